"""The demo seed command: realistic, goes through the ingest service, and is idempotent."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.models import DateTimeField, Max
from django.urls import reverse
from django.utils import timezone

from delivery import recipients
from delivery.lifecycle import Status
from delivery.models import InboundMessage, Message, MessageEvent, RawWebhook

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


def test_every_callback_is_a_raw_request_and_a_few_are_unreadable():
    """As the webhook view stores them: one raw request per callback, duplicates included,
    received when the callback came; a report without its message id is kept for review."""
    seed(days=3)
    events = MessageEvent.objects.select_related("raw_webhook")
    receipts = sum(1 + e.duplicate_count for e in events)
    assert RawWebhook.objects.filter(parse_error="").count() == receipts
    assert all(e.raw_webhook.received_at == e.received_at for e in events)
    # A duplicate is the provider's retry: its request and the event's "last duplicate" agree,
    # after the first and in the past.
    repeated = [e for e in events if e.duplicate_count]
    retries = set(RawWebhook.objects.filter(parse_error="").values_list("received_at", flat=True))
    assert repeated and all(e.received_at < e.last_duplicate_at < timezone.now() for e in repeated)
    assert all(e.last_duplicate_at in retries for e in repeated)
    [unreadable] = RawWebhook.objects.exclude(parse_error="")
    assert "missing" in unreadable.parse_error and unreadable.signature_valid is None
    id_field = {"twilio": b"MessageSid", "vonage": b"messageId", "plivo": b"MessageUUID"}
    assert id_field[unreadable.provider] not in unreadable.sealed.body


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


# -- --bulk: a production-size database by set-based copies (PostgreSQL) -------------------------


def bulk(total, **options):
    out = io.StringIO()
    call_command("sms_delivery_seed", bulk=total, seed=3, days=3, stdout=out, **options)
    return out.getvalue()


def test_bulk_needs_postgresql():
    if connection.vendor == "postgresql":
        pytest.skip("this is the SQLite answer")
    with pytest.raises(CommandError, match="PostgreSQL"):
        bulk(100)


@pytest.mark.postgres
def test_bulk_copies_templates_into_consistent_messages(monkeypatch, admin_client):
    from providers.management.commands import sms_delivery_seed

    monkeypatch.setattr(sms_delivery_seed, "TEMPLATES", 40)
    output = bulk(400, batch_size=150)
    assert "Copying them until 400 messages exist" in output and "[####" in output
    assert Message.objects.count() == 400
    assert len(distinct("public_id")) == len(distinct("provider_message_id")) == 400
    now = timezone.now()
    for model in (Message, MessageEvent, RawWebhook, InboundMessage):
        for field in model._meta.concrete_fields:
            if isinstance(field, DateTimeField):
                latest = model.objects.aggregate(latest=Max(field.name))["latest"]
                assert latest is None or latest <= now, (model.__name__, field.name, latest)
    for message in Message.objects.prefetch_related("events"):
        events = list(message.events.all())
        assert message.status_event_key in {e.dedupe_key for e in events}, message.public_id
        assert all(message.created_at <= e.received_at <= now for e in events)
        assert message.recipient and message.recipient.startswith("+")
        assert message.destination_country == recipients.locate(message.recipient).country
    receipts = sum(1 + e.duplicate_count for e in MessageEvent.objects.all())
    assert RawWebhook.objects.filter(parse_error="").count() == receipts
    assert RawWebhook.objects.exclude(parse_error="").count() == 400 // 50
    assert MessageEvent.objects.filter(raw_webhook__isnull=True).count() == 0
    for event in MessageEvent.objects.select_related("message", "raw_webhook"):
        assert event.raw_webhook.recipient_hash == event.message.recipient_hash  # for erasure
    assert InboundMessage.objects.count() == 0  # one per 500 messages
    # A copy is a message like any other: found by its number, shown on its page.
    copy = Message.objects.order_by("-id").first()
    assert copy in Message.objects.for_recipient(copy.recipient)
    page = admin_client.get(reverse("admin:sms_delivery_message_change", args=[copy.pk]))
    assert page.status_code == 200 and copy.public_id in page.content.decode()


@pytest.mark.postgres
def test_bulk_again_adds_only_what_is_missing(monkeypatch):
    from providers.management.commands import sms_delivery_seed

    monkeypatch.setattr(sms_delivery_seed, "TEMPLATES", 30)
    bulk(100)
    before = set(MessageEvent.objects.values_list("dedupe_key", "received_at"))
    raw = RawWebhook.objects.count()
    assert "0 messages, 0 events, 0 raw requests" in bulk(100)
    assert set(MessageEvent.objects.values_list("dedupe_key", "received_at")) == before
    assert RawWebhook.objects.count() == raw
    bulk(1200)
    assert Message.objects.count() == 1200 and InboundMessage.objects.count() == 2
    assert before < set(MessageEvent.objects.values_list("dedupe_key", "received_at"))
