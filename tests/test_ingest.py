"""The ingest service on any database: idempotency, precedence, evidence, signals."""

import os
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError

from delivery import ingest as ingest_module
from delivery.ingest import RawRequest, ingest, register_outbound, store_unparsed
from delivery.lifecycle import ErrorCategory, Status
from delivery.models import Message, MessageEvent, RawWebhook
from delivery.signals import message_status_changed
from tests.factories import NormalizedEventFactory as Event

pytestmark = pytest.mark.django_db(transaction=False)

SID = "SM1342fe1b2c904d1ab04f0fc7a58abca9"


@pytest.fixture
def transitions(django_capture_on_commit_callbacks):
    """Collect message_status_changed signals, running on_commit callbacks as Django would."""
    seen = []

    def receiver(sender, message, previous_status, status, event, **kwargs):
        seen.append((previous_status, status, event.raw_status))

    message_status_changed.connect(receiver)
    yield seen
    message_status_changed.disconnect(receiver)


def run(events, capture, raw=None):
    with capture(execute=True):
        return ingest(events, raw)


def test_callback_before_the_message_exists_creates_it(django_capture_on_commit_callbacks):
    run(
        [Event(status=Status.SENT, recipient="+1 555 867 5310", sender_identity="+15017122661")],
        django_capture_on_commit_callbacks,
    )
    message = Message.objects.get(provider="twilio", provider_message_id=SID)
    assert message.current_status == Status.SENT
    assert message.recipient == "+15558675310"
    assert message.destination_country == "US"
    assert message.first_sent_at is not None
    assert "5310" not in message.recipient_encrypted


def test_duplicate_event_is_stored_once_and_counted(
    transitions, django_capture_on_commit_callbacks
):
    delivered = Event(status=Status.DELIVERED)
    first = run([delivered], django_capture_on_commit_callbacks)
    second = run([delivered], django_capture_on_commit_callbacks)
    assert (first.stored, first.duplicates, second.stored, second.duplicates) == (1, 0, 0, 1)
    event = MessageEvent.objects.get()
    assert event.duplicate_count == 1 and event.last_duplicate_at is not None
    assert transitions == [("accepted", "delivered", "delivered")]


def test_late_sent_after_failed_is_stored_not_applied(
    transitions, django_capture_on_commit_callbacks
):
    failed = Event(
        status=Status.FAILED, error_code="30001", error_category=ErrorCategory.PROVIDER_OUTAGE
    )
    run([failed], django_capture_on_commit_callbacks)
    run([Event(status=Status.SENT)], django_capture_on_commit_callbacks)
    message = Message.objects.get()
    assert (message.current_status, message.error_code) == (Status.FAILED, "30001")
    assert [(e.raw_status, e.applied) for e in MessageEvent.objects.timeline(message)] == [
        ("failed", True),
        ("sent", False),
    ]
    assert transitions == [("accepted", "failed", "failed")]


def test_sent_after_delivered_fills_sent_time_but_keeps_delivered(
    django_capture_on_commit_callbacks,
):
    t = datetime(2026, 11, 22, 14, 37, tzinfo=UTC)
    run(
        [Event(status=Status.DELIVERED, provider_occurred_at=t)], django_capture_on_commit_callbacks
    )
    run([Event(status=Status.SENT)], django_capture_on_commit_callbacks)
    message = Message.objects.get()
    assert message.current_status == Status.DELIVERED
    assert message.delivered_at == t and message.first_sent_at == t


def test_unknown_status_is_kept_and_flags_review(transitions, django_capture_on_commit_callbacks):
    run([Event(status=Status.SENT)], django_capture_on_commit_callbacks)
    run([Event(status=Status.UNKNOWN, raw_status="teleported")], django_capture_on_commit_callbacks)
    message = Message.objects.get()
    assert message.current_status == Status.SENT and message.needs_review
    assert MessageEvent.objects.filter(status=Status.UNKNOWN, raw_status="teleported").exists()
    assert len(transitions) == 1


def test_raw_request_is_stored_with_its_events(django_capture_on_commit_callbacks):
    raw = RawRequest(
        provider="twilio",
        method="POST",
        path="/webhooks/twilio/status/",
        body=b"MessageSid=SM1&MessageStatus=sent\xff",
        headers={"X-Twilio-Signature": "x"},
        content_type="application/x-www-form-urlencoded",
        account="AC1",
    )
    result = run([Event(status=Status.SENT)], django_capture_on_commit_callbacks, raw)
    stored = RawWebhook.objects.get()
    assert stored.sealed.body.endswith(b"sent\xff")  # undecodable bytes kept exactly
    assert MessageEvent.objects.get().raw_webhook == stored == result.raw_webhook


def test_storage_failure_rolls_back_everything(monkeypatch, transitions):
    def broken(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(ingest_module, "_fold_into_summary", broken)
    raw = RawRequest(provider="twilio", method="POST", path="/", body=b"", headers={})
    with pytest.raises(DatabaseError):
        ingest([Event(status=Status.SENT)], raw)
    assert not RawWebhook.objects.exists()
    assert not MessageEvent.objects.exists()
    assert transitions == []


def test_unparsed_request_is_kept_for_review():
    raw = RawRequest(provider="twilio", method="POST", path="/", body=b"garbage", headers={})
    record = store_unparsed(raw, "MessageSid is missing")
    assert RawWebhook.objects.get(parse_error="MessageSid is missing") == record


def test_register_outbound_after_callbacks_keeps_their_status(django_capture_on_commit_callbacks):
    run([Event(status=Status.DELIVERED)], django_capture_on_commit_callbacks)
    message = register_outbound(
        provider="twilio",
        provider_message_id=SID,
        to="+447700900123",
        template_key="otp_login",
        product_reference="login:8812",
    )
    assert message.current_status == Status.DELIVERED
    assert (message.template_key, message.destination_country) == ("otp_login", "GB")
    assert Message.objects.for_recipient("07700 900123", "GB").get() == message


def test_register_outbound_then_callbacks(transitions, django_capture_on_commit_callbacks):
    register_outbound(provider="twilio", provider_message_id=SID, to="+15558675310")
    run(
        [Event(status=Status.SENT), Event(status=Status.DELIVERED)],
        django_capture_on_commit_callbacks,
    )
    assert Message.objects.get().current_status == Status.DELIVERED
    assert transitions == [("accepted", "sent", "sent"), ("sent", "delivered", "delivered")]


def test_distinct_reports_with_same_status_are_distinct_events(django_capture_on_commit_callbacks):
    run(
        [
            Event(status=Status.UNDELIVERED, error_code="30003"),
            Event(status=Status.UNDELIVERED, error_code="30005"),
        ],
        django_capture_on_commit_callbacks,
    )
    assert MessageEvent.objects.count() == 2
    # The precedence tie-break picks the same deciding event whatever the arrival order.
    assert Message.objects.get().error_code == "30005"


def test_dedupe_key_prefers_provider_event_id():
    assert Event(provider_event_id="evt-1").dedupe_key == "twilio:event:evt-1"
    long = Event(raw_status="x" * 300)
    assert len(long.dedupe_key) <= 255 and long.dedupe_key.startswith("twilio:sha256:")


def test_a_report_costs_one_statement_and_a_report_of_a_new_message_two(monkeypatch):
    """The lean path on PostgreSQL: a report of a known message is locked, stored with its
    request and folded into the summary by one statement (no BEGIN or COMMIT outside a
    transaction); a redelivery is counted and its request stored by it too; a report of a
    message we did not know costs two, the one that finds nothing and the one that inserts
    the message with its summary decided, the request and the event. SQLite, or several
    reports in a request: lock (the count and the request a statement each on SQLite), event,
    update of the columns that changed."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def statements(events):
        raw = RawRequest("twilio", "POST", "/webhooks/twilio/status/", b"x", {})
        with CaptureQueriesContext(connection) as queries:
            ingest(events, raw)
        return [
            q["sql"].split(" ")[0] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]
        ]

    postgresql = connection.vendor == "postgresql"
    lock = ["WITH"] if postgresql else ["UPDATE", "UPDATE", "INSERT"]  # + count, + request
    register_outbound(provider="twilio", provider_message_id="SMlean", to="+14155550100")
    sent = Event(provider_message_id="SMlean", status=Status.SENT, recipient="+14155550100")
    assert statements([sent]) == (["WITH"] if postgresql else [*lock, "INSERT", "UPDATE"])
    with monkeypatch.context() as patched:  # a redelivery parses no number
        patched.setattr("delivery.ingest.to_e164", lambda *a: pytest.fail("parsed"))
        patched.setattr("delivery.ingest.protect", lambda *a: pytest.fail("parsed"))
        assert statements([sent]) == lock  # counted, and its request stored
    redelivered = RawWebhook.objects.latest("id")
    assert redelivered.recipient_hash == Message.objects.get().recipient_hash  # linked to them
    new = Event(provider_message_id="SMnew", status=Status.DELIVERED, recipient="+14155550101")
    # message, request, event
    assert statements([new]) == (["WITH", "WITH"] if postgresql else [lock[0], *["INSERT"] * 3])
    first = Message.objects.get(provider_message_id="SMnew")
    assert first.current_status == Status.DELIVERED and first.recipient == "+14155550101"
    assert first.delivered_at and first.destination_country == "US"
    message = Message.objects.get(provider_message_id="SMlean")
    assert message.current_status == Status.SENT and RawWebhook.objects.count() == 3
    assert MessageEvent.objects.get(message=message).duplicate_count == 1
    # Two reports in a request: one transaction, each summary update naming what changed.
    two = [
        Event(provider_message_id="SMlean", status=Status.DELIVERED),
        Event(provider_message_id="SMnew", status=Status.READ),
    ]
    with CaptureQueriesContext(connection) as queries:
        ingest(two)
    updates = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('UPDATE "sms_delivery_message" SET')
        and '"current_status" =' in q["sql"]  # not the lock (SQLite)
    ]
    assert len(updates) == 2 and not any("recipient_encrypted" in sql for sql in updates)
    assert Message.objects.get(pk=message.pk).current_status == Status.DELIVERED


def test_a_request_stored_by_the_lock_s_statement_is_the_request_as_received():
    """On PostgreSQL the lock's statement stores the request (typed placeholders in a SELECT
    list): every column as a separate insert would write it, linked to the message's person
    and to its event. An unverified request (``signature_valid`` NULL) too."""
    from delivery.recipients import recipient_hash

    message = register_outbound(provider="twilio", provider_message_id="SMraw", to="+14155550100")
    headers = {"X-Twilio-Signature": "sig", "X-Caller": "+14155550123"}
    body = b"MessageSid=SMraw&To=%2B14155550100"
    raw = RawRequest(
        "twilio",
        "POST",
        "/webhooks/twilio/status/?to=+14155550100",
        body,
        headers,
        content_type="application/x-www-form-urlencoded",
        account="AC" + "1" * 32,
        signature_valid=None,
    )
    result = ingest([Event(provider_message_id="SMraw", status=Status.SENT)], raw)
    stored = RawWebhook.objects.get()
    assert result.raw_webhook is not None and result.raw_webhook.pk == stored.pk
    assert MessageEvent.objects.get().raw_webhook_id == stored.pk
    assert stored.recipient_hash == message.recipient_hash == recipient_hash("+14155550100")
    assert stored.signature_valid is None and stored.method == "POST"
    assert stored.account == "AC" + "1" * 32 and stored.parse_error == ""
    assert stored.content_type == "application/x-www-form-urlencoded"
    assert "4155550100" not in stored.path and stored.received_at is not None
    assert not stored.pending
    sealed = stored.sealed
    assert sealed is not None and sealed.body == body and sealed.headers == headers
    assert sealed.path == raw.path


def test_a_request_about_a_message_without_a_number_is_linked_to_the_report_s_person():
    """The lock's statement stores a request only when the message knows its person; else
    the report's number decides it, as for a message we did not know."""
    from delivery.recipients import recipient_hash

    register_outbound(provider="twilio", provider_message_id="SMnobody")
    raw = RawRequest("twilio", "POST", "/webhooks/twilio/status/", b"x", {})
    sent = Event(provider_message_id="SMnobody", status=Status.SENT, recipient="+14155550100")
    ingest([sent], raw)
    person = recipient_hash("+14155550100")
    assert RawWebhook.objects.get().recipient_hash == person
    assert Message.objects.get().recipient_hash == person
    assert MessageEvent.objects.get().raw_webhook_id == RawWebhook.objects.get().pk


@pytest.mark.parametrize("known", [False, True], ids=["first report", "known message"])
def test_receivers_get_the_previous_status_as_text(
    transitions, django_capture_on_commit_callbacks, known
):
    """As read from the row, whether the message was known or created by this report."""
    if known:
        register_outbound(provider="twilio", provider_message_id="SMtext")
    delivered = Event(provider_message_id="SMtext", status=Status.DELIVERED)
    run([delivered], django_capture_on_commit_callbacks)
    [(previous, _, _)] = transitions
    assert previous == "accepted" and type(previous) is str


def test_receivers_get_the_whole_message_without_another_query(
    django_capture_on_commit_callbacks,
):
    """A receiver reads any field of the message it is handed (the README's example reads the
    template and the product reference) without a query of its own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    register_outbound(
        provider="twilio",
        provider_message_id="SMwhole",
        to="+14155550100",
        template_key="otp",
        product_reference="login:1",
    )
    seen = []

    def receiver(message, **kwargs):
        with CaptureQueriesContext(connection) as queries:
            seen.append((message.template_key, message.product_reference, message.created_at))
        seen.append(len(queries.captured_queries))

    message_status_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            ingest([Event(provider_message_id="SMwhole", status=Status.DELIVERED)])
    finally:
        message_status_changed.disconnect(receiver)
    assert seen[0][:2] == ("otp", "login:1") and seen[1] == 0


def test_a_request_is_linked_to_the_first_person_it_names():
    """Its first report names no number, a later one does: the request is still linked to
    that person (an erasure finds it through the hash)."""
    from delivery.recipients import recipient_hash

    raw = RawRequest("twilio", "POST", "/webhooks/twilio/status/", b"x", {})
    ingest(
        [
            Event(provider_message_id="SMnone", recipient=""),
            Event(provider_message_id="SMsome", recipient="+14155550100"),
        ],
        raw,
    )
    assert RawWebhook.objects.get().recipient_hash == recipient_hash("+14155550100")


SQLITE_RACE = """
import sys, threading
import django
django.setup()
from django.core.management import call_command
from django.db import connections
from delivery.events import NormalizedEvent
from delivery.ingest import ingest
from delivery.models import Message, MessageEvent

call_command("migrate", verbosity=0)
errors = []

def report(sid, status):
    try:
        ingest([NormalizedEvent(provider="twilio", provider_message_id=sid, raw_status=status,
                                status=status, recipient="+14155550100")])
    except Exception as exc:
        errors.append(type(exc).__name__)
    finally:
        connections.close_all()

for round in range(5):
    barrier = threading.Barrier(6)
    statuses = ["sent", "delivered", "undelivered", "read", "failed", "expired"]
    threads = [threading.Thread(target=lambda s=s: (barrier.wait(), report(f"SM{round}", s)))
               for s in statuses]
    for thread in threads: thread.start()
    for thread in threads: thread.join()
print(len(errors), Message.objects.count(), MessageEvent.objects.count())
"""


@pytest.mark.slow
def test_concurrent_reports_on_sqlite_wait_for_each_other_instead_of_failing(tmp_path):
    """On SQLite (development, the demo's threaded server) a report's transaction writes first,
    so a concurrent one waits for the database's write lock rather than failing with "database
    is locked" (a 503) when both read first and then write. Six threads, five rounds, on a
    database file as the demo uses."""
    import subprocess
    import sys

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'race.sqlite3'}",
        "SECRET_KEY": "race-secret-key-0123456789-0123456789",
        "SMS_DELIVERY_HASH_KEY": "race-hash-key",
        "SMS_DELIVERY_ENCRYPTION_KEYS": "race-encryption-key",
    }
    out = subprocess.run(
        [sys.executable, "-c", SQLITE_RACE], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["0", "5", "30"], out.stdout


@pytest.mark.parametrize("known", [False, True], ids=["new message", "known message"])
def test_an_event_id_of_another_message_is_refused_and_writes_nothing(known):
    """A provider's event id names an event of another message: filing the report under either
    would be wrong. Refused as unreadable (the view keeps the request for review); no message,
    event or request is written for it."""
    from delivery.exceptions import MalformedPayload

    first = Event(provider="telnyx", provider_message_id="msg-1", provider_event_id="evt-9")
    ingest([first], RawRequest("telnyx", "POST", "/webhooks/telnyx/", b"x", {}))
    if known:
        register_outbound(provider="telnyx", provider_message_id="msg-2", to="+14155550100")
    before = (Message.objects.count(), MessageEvent.objects.count(), RawWebhook.objects.count())
    clash = Event(
        provider="telnyx",
        provider_message_id="msg-2",
        provider_event_id="evt-9",
        status=Status.DELIVERED,
        recipient="+14155550100",
    )
    with pytest.raises(MalformedPayload, match="already recorded for another message"):
        ingest([clash], RawRequest("telnyx", "POST", "/webhooks/telnyx/", b"y", {}))
    after = (Message.objects.count(), MessageEvent.objects.count(), RawWebhook.objects.count())
    assert after == before
    assert MessageEvent.objects.get().message.provider_message_id == "msg-1"
