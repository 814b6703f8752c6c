"""The demo seed command: realistic, goes through the ingest service, and is idempotent."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from delivery.lifecycle import Status
from delivery.models import Message, MessageEvent

pytestmark = pytest.mark.django_db


def seed(**options):
    out = io.StringIO()
    call_command("sms_delivery_seed", messages=40, seed=3, stdout=out, **options)
    return out.getvalue()


def distinct(field):
    return set(Message.objects.values_list(field, flat=True))


def test_seed_creates_a_realistic_mix():
    output = seed()
    assert Message.objects.count() == 40
    assert len(distinct("destination_country")) >= 5
    assert distinct("provider") == {"twilio", "vonage", "plivo"}
    assert len(distinct("template_key")) >= 4
    assert {Status.DELIVERED, Status.READ, Status.UNDELIVERED, Status.SENT} <= distinct(
        "current_status"
    )
    assert len(distinct("current_status")) >= 6
    assert Message.objects.filter(needs_review=True).exists()
    assert MessageEvent.objects.filter(status=Status.UNKNOWN).exists()
    assert MessageEvent.objects.filter(applied=False).exists()  # arrived out of order
    assert MessageEvent.objects.filter(duplicate_count__gt=0).exists()
    assert Message.objects.exclude(error_category="").exists()
    assert Message.objects.filter(sender_identity="whatsapp:+14155238886").exists()
    assert all(m.recipient.startswith("+") for m in Message.objects.all())
    assert "40 messages created" in output


def test_seed_spreads_sends_over_the_last_days():
    seed(days=3)
    newest = Message.objects.latest("created_at").created_at
    oldest = Message.objects.earliest("created_at").created_at
    assert newest - oldest > timedelta(hours=12)
    # Every callback happened after the send it reports on, and none lies in the future.
    for event in MessageEvent.objects.select_related("message"):
        assert event.provider_occurred_at >= event.message.created_at
        assert event.provider_occurred_at < event.received_at


def test_second_run_leaves_the_evidence_as_it_was():
    seed()
    before = list(MessageEvent.objects.values_list("id", "duplicate_count", "received_at"))
    output = seed()
    assert list(MessageEvent.objects.values_list("id", "duplicate_count", "received_at")) == before
    assert "0 messages created (40 already there), 0 events stored, 0 duplicates" in output


def test_demo_timelines_are_physically_possible():
    """Nothing is sent before it was requested, nor delivered before it was sent."""
    seed(days=3)
    for message in Message.objects.all():
        assert message.registered_at == message.created_at
        if message.first_sent_at:
            assert message.first_sent_at >= message.registered_at, message.public_id
        if message.delivered_at and message.first_sent_at:
            assert message.delivered_at >= message.first_sent_at, message.public_id


def test_larger_run_only_adds_the_missing_messages():
    seed()
    ids = set(Message.objects.values_list("provider_message_id", flat=True))
    call_command("sms_delivery_seed", messages=50, seed=3, stdout=io.StringIO())
    assert Message.objects.count() == 50
    assert ids < set(Message.objects.values_list("provider_message_id", flat=True))


def test_rejects_nonsense_arguments():
    with pytest.raises(CommandError):
        call_command("sms_delivery_seed", days=0, stdout=io.StringIO())
