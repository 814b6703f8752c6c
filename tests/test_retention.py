"""Retention (``sms_delivery_purge``) and erasure (``sms_delivery_erase``): what must go goes,
checked in a dump of every table with every encrypted value opened."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from delivery import erasure
from delivery.checks import Codes, check_retention
from delivery.exceptions import InvalidNumber, MalformedPayload
from delivery.lifecycle import Status
from delivery.models import Erasure, InboundMessage, Message, MessageEvent, RawWebhook
from delivery.retention import TARGETS, checkpoint, purge
from providers.twilio import TwilioProvider
from tests.fixtures import twilio
from tests.privacy import decrypted_text, numbers_in
from tests.providers.test_twilio import post

pytestmark = pytest.mark.django_db

ALICE = "+14155550100"  # the person who asks to be erased
BOB = "+15558675310"  # someone else
INBOUND_PATH = "/webhooks/twilio/inbound/"


def texts_of(client, number, sid):
    """Two reports (one of them twice) about a message to ``number``."""
    sent = twilio.callback("sent", sid=sid, To=number)
    delivered = twilio.callback("undelivered", sid=sid, To=number, ErrorCode="30003")
    for report in (sent, delivered, delivered):
        assert post(client, report).status_code == 200


@pytest.fixture
def people(client, monkeypatch, settings):
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "DEFAULT_REGION": "US"}
    texts_of(client, ALICE, "SM" + "a" * 32)
    texts_of(client, ALICE, "SM" + "b" * 32)
    texts_of(client, BOB, "SM" + "c" * 32)
    stop = twilio.incoming("STOP", From=ALICE)
    assert (
        post(client, stop, url="http://testserver" + INBOUND_PATH, path=INBOUND_PATH).status_code
        == 200
    )

    def broken(self, request):
        raise MalformedPayload("MessageStatus is missing.")

    with monkeypatch.context() as patch:  # one request of Alice's in the review queue
        patch.setattr(TwilioProvider, "parse", broken)
        assert (
            post(client, twilio.callback("sent", sid="SM" + "d" * 32, To=ALICE)).status_code == 400
        )
    text = decrypted_text()
    assert numbers_in(text, (ALICE,)) and numbers_in(text, (BOB,))


def snapshot():
    return (
        list(Message.objects.values_list("recipient_encrypted", "current_status")),
        list(MessageEvent.objects.values_list("payload_encrypted", flat=True)),
        list(RawWebhook.objects.values_list("request_encrypted", flat=True)),
        list(InboundMessage.objects.values_list("sender_encrypted", flat=True)),
    )


# -- erasure ---------------------------------------------------------------------------------


def test_erasure_leaves_no_trace_of_the_number_and_keeps_the_records(people):
    statuses = list(Message.objects.order_by("pk").values_list("current_status", "error_code"))
    record = erasure.erase("(415) 555-0100", actor="dpo", reason="GDPR request 12")
    text = decrypted_text()
    assert not numbers_in(text, (ALICE,)), numbers_in(text, (ALICE,))[:3]
    assert numbers_in(text, (BOB,))  # nobody else's data went
    assert list(Message.objects.order_by("pk").values_list("current_status", "error_code")) == (
        statuses
    )
    alices = Message.objects.for_recipient(ALICE)
    assert alices.count() == 2 and not any(m.recipient for m in alices)  # still found
    assert record.touched == {
        "messages": 2,
        "inbound_messages": 1,
        "event_payloads": 4,
        # 2 × (sent, undelivered, its repeat), the STOP, and the unreadable one
        "raw_requests": 8,
        "requests_searched": 1,
    }
    assert Erasure.objects.get().actor == "dpo"


def test_erasure_dry_run_changes_nothing(people):
    before = snapshot()
    out = io.StringIO()
    call_command("sms_delivery_erase", "--number", ALICE, "--dry-run", stdout=out)
    assert "would blank 2 messages, 1 inbound messages, 4 event payloads, 8 raw requests" in (
        out.getvalue()
    )
    assert ALICE not in out.getvalue() and snapshot() == before and not Erasure.objects.exists()


def test_erase_command_records_who_and_why(people):
    out = io.StringIO()
    call_command("sms_delivery_erase", "--number", ALICE, "--reason", "ticket 9", stdout=out)
    assert "Erased +1 ••• ••• 0100: 2 messages" in out.getvalue()
    assert Erasure.objects.get().reason == "ticket 9"
    assert not numbers_in(decrypted_text(), (ALICE,))


def test_the_number_can_come_from_standard_input(people):
    out = io.StringIO()
    call_command("sms_delivery_erase", "--number", "-", stdin=io.StringIO(ALICE + "\n"), stdout=out)
    assert "Erased +1 ••• ••• 0100: 2 messages" in out.getvalue()


def test_erasing_what_is_not_a_number_erases_nothing(people):
    with pytest.raises(CommandError, match="Not a phone number"):
        call_command("sms_delivery_erase", "--number", "hello", stdout=io.StringIO())
    with pytest.raises(InvalidNumber):
        erasure.erase("hello", actor="x")
    assert not Erasure.objects.exists()


def test_a_number_typed_into_the_reason_is_masked(people):
    erasure.erase(ALICE, actor="dpo", reason="asked by +1 415 555 0100 on the phone")
    assert not numbers_in(Erasure.objects.get().reason, (ALICE,))


@pytest.mark.telnyx
def test_erasing_one_member_of_a_group_message_leaves_no_trace_of_them(
    client, sms_delivery_settings
):
    """A group request names every recipient but is linked to the first; posted twice, its
    repeat is read by no event. Erasing the second recipient still finds both copies."""
    from tests.fixtures import telnyx
    from tests.providers import test_telnyx

    sms_delivery_settings["PROVIDERS"]["telnyx"] = {
        "PUBLIC_KEYS": [test_telnyx.public_key(test_telnyx.CURRENT)]
    }
    for _ in range(2):
        assert test_telnyx.post(client, telnyx.GROUP_FINALIZED).status_code == 200
    member, others = telnyx.GROUP_TO[1], [telnyx.GROUP_TO[0], telnyx.GROUP_TO[2]]
    assert numbers_in(decrypted_text(), (member,))
    record = erasure.erase(member, actor="dpo")
    text = decrypted_text()
    assert not numbers_in(text, (member,)), numbers_in(text, (member,))[:3]
    assert record.touched["raw_requests"] == 2 and record.touched["messages"] == 1
    # The other members' messages keep their numbers; the shared requests are gone for all.
    assert [m.recipient for m in Message.objects.for_recipient(others[0])] == [others[0]]


def test_a_raw_request_is_linked_to_its_person_when_read(people):
    alice = Message.objects.for_recipient(ALICE).first()
    assert RawWebhook.objects.filter(recipient_hash=alice.recipient_hash).count() == 7


# -- retention -------------------------------------------------------------------------------


def age(days):
    """Make everything ``days`` old."""
    then = timezone.now() - timedelta(days=days)
    RawWebhook.objects.update(received_at=then)
    MessageEvent.objects.update(received_at=then)
    Message.objects.update(created_at=then)
    InboundMessage.objects.update(received_at=then)


def purge_command(*args):
    out = io.StringIO()
    call_command("sms_delivery_purge", *args, stdout=out)
    return out.getvalue()


def test_without_retention_settings_nothing_is_purged(people):
    before = snapshot()
    assert "nothing to do" in purge_command()
    assert snapshot() == before


def test_purge_blanks_what_is_older_and_keeps_statuses(people, settings, client):
    age(40)
    texts_of(client, "+14155550123", "SM" + "e" * 32)  # a new one, kept
    settings.SMS_DELIVERY = {
        **settings.SMS_DELIVERY,
        "RETENTION": {"RAW_REQUESTS_DAYS": 30, "EVENT_PAYLOADS_DAYS": 30, "RECIPIENTS_DAYS": 30},
    }
    before = snapshot()
    output = purge_command("--dry-run")
    assert "raw requests: 11 older than 30 days" in output and snapshot() == before

    statuses = list(Message.objects.order_by("pk").values_list("current_status", "recipient_hash"))
    output = purge_command("--batch-size", "2")
    assert "raw requests: 11 blanked" in output and "recipient numbers: 3 blanked" in output
    text = decrypted_text()
    assert not numbers_in(text, (ALICE, BOB)) and numbers_in(text, ("+14155550123",))
    assert list(Message.objects.order_by("pk").values_list("current_status", "recipient_hash")) == (
        statuses
    )
    assert Message.objects.filter(current_status=Status.UNDELIVERED).count() == 4
    assert "raw requests: 0 blanked" in purge_command()  # a second run finds nothing


def test_options_override_the_settings(people):
    age(10)
    assert "raw requests: 0 older than 30 days" in purge_command(
        "--raw-requests-days", "30", "--dry-run"
    )
    assert "raw requests: 11 older than 5 days" in purge_command(
        "--raw-requests-days", "5", "--dry-run"
    )
    assert "event payloads: kept" in purge_command("--raw-requests-days", "5", "--dry-run")
    with pytest.raises(CommandError):
        purge_command("--raw-requests-days", "0")


def test_purge_goes_in_batches_and_resumes(people):
    age(40)
    target = next(t for t in TARGETS if t.label == "raw requests")
    cutoff = timezone.now() - timedelta(days=30)
    seen = []
    with CaptureQueriesContext(connection) as queries:
        assert purge(target, cutoff, batch_size=3, progress=seen.append) == 11
    assert seen == [3, 6, 9, 11]
    # Each batch after the first starts the index scan where the last one ended: a plain lower
    # bound on the time, which PostgreSQL can use (an OR alone it cannot).
    pages = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('SELECT "sms_delivery_rawwebhook"') and ' AS "pk"' in q["sql"]
    ]
    assert len(pages) == 5 and all('"received_at" >= ' in sql for sql in pages[1:])
    assert purge(target, cutoff, batch_size=3) == 0


def test_a_finished_purge_is_where_the_next_one_starts(people):
    """A nightly purge reads the rows since the last cutoff, not years of blanked ones."""
    target = next(t for t in TARGETS if t.label == "raw requests")
    age(40)
    first = timezone.now() - timedelta(days=30)
    assert purge(target, first) == 11
    assert checkpoint(target) == first
    with CaptureQueriesContext(connection) as queries:
        assert purge(target, first + timedelta(days=1)) == 0
    [walk] = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('SELECT "sms_delivery_rawwebhook"') and ' AS "pk"' in q["sql"]
    ]
    assert '"received_at" >= ' in walk  # starts at the checkpoint
    # A longer retention (an earlier cutoff) does not move it back.
    purge(target, first - timedelta(days=5))
    assert checkpoint(target) == first + timedelta(days=1)
    # Old rows written after the checkpoint (an import) are found by walking from the start.
    RawWebhook.objects.filter(pk=RawWebhook.objects.first().pk).update(request_encrypted="x")
    assert purge_command("--raw-requests-days", "30").count("0 blanked") == 1
    assert "raw requests: 1 blanked" in purge_command("--raw-requests-days", "30", "--from-start")


@pytest.mark.parametrize(
    "retention, problem",
    [
        ({"RAW_REQUESTS_DAYS": 0}, "not a number of days"),
        ({"RAW_REQUESTS_DAYS": "90"}, "not a number of days"),
        ({"RAW_REQUEST_DAYS": 90}, "unknown key"),
        ([90], "not a dict"),
    ],
)
def test_a_retention_setting_that_cannot_work_is_e009(settings, retention, problem):
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "RETENTION": retention}
    [error] = check_retention()
    assert error.id == Codes.INVALID_RETENTION and problem in error.msg


def test_a_correct_retention_setting_passes(settings):
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "RETENTION": {"RECIPIENTS_DAYS": 365}}
    assert check_retention() == []
