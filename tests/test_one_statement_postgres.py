"""A lone report on PostgreSQL is applied by one statement (``statements.apply_report``) whose
fold is written in SQL; a request of several reports, SQLite and a replay take the
transaction path, whose fold is Python's (``ingest._fold_into_summary``). The same reports in
the same order, through each path, must leave the same summary, the same events and tell
receivers the same transitions."""

import contextlib
import itertools
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery.ingest import RawRequest, ingest, register_outbound
from delivery.lifecycle import ErrorCategory, Status
from delivery.models import Message, MessageEvent
from delivery.signals import message_status_changed
from tests.factories import NormalizedEventFactory as Event

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

#: Year 1 at midnight UTC is lifecycle's time for a report without one: a tie, not a win.
_TIMES = [
    None,
    datetime(1, 1, 1, tzinfo=UTC),
    *(datetime(2026, 3, 1, 12, minute, tzinfo=UTC) for minute in (0, 0, 5, 9)),
]
_NUMBERS = ["", "+14155550100", "+447700900123", "not a number"]

reports = st.fixed_dictionaries(
    {
        "status": st.sampled_from(list(Status)),
        "provider_occurred_at": st.sampled_from(_TIMES),
        "error_code": st.sampled_from(["", "30003", "30005", "é"]),
        "error_category": st.sampled_from(
            ["", ErrorCategory.UNREACHABLE_HANDSET, ErrorCategory.INVALID_NUMBER]
        ),
        "recipient": st.sampled_from(_NUMBERS),
        "sender_identity": st.sampled_from(["", "+15017122661", "MGabc"]),
        "destination_country": st.sampled_from(["", "GB"]),
        "segments": st.sampled_from([None, 0, 1, 3]),
    }
)
registrations = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"to": st.sampled_from(_NUMBERS[:3]), "sender_identity": st.sampled_from(["", "MGx"])}
    ),
)
_ids = itertools.count()


def _summary(message: Message, sid: str) -> dict:
    fields = {
        name: getattr(message, name)
        for name in (
            "current_status",
            "status_occurred_at",
            "error_code",
            "error_category",
            "needs_review",
            "recipient_hash",
            "destination_country",
            "sender_identity",
            "segments",
            "recipient",
        )
    }
    fields["status_event_key"] = message.status_event_key.replace(sid, "SID")
    fields["sent"] = message.first_sent_at is not None
    fields["delivered"] = message.delivered_at is not None
    return fields


_SEQUENCES = {
    "registration": registrations,
    "sequence": st.lists(reports, min_size=1, max_size=6),
    "data": st.data(),
}


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(**_SEQUENCES)
def test_one_statement_and_a_transaction_decide_the_same(
    registration, sequence, data, django_capture_on_commit_callbacks
):
    """Inside the test's transaction: the statements in a savepoint."""
    _decide_both(
        registration, sequence, data, lambda: django_capture_on_commit_callbacks(execute=True)
    )


@pytest.mark.django_db(transaction=True)
@settings(max_examples=30)
@given(**_SEQUENCES)
def test_one_statement_in_autocommit_and_a_transaction_decide_the_same(
    registration, sequence, data
):
    """As the webhook runs them: each statement its own transaction."""
    from django.db import connection

    assert not connection.in_atomic_block
    _decide_both(registration, sequence, data, contextlib.nullcontext)


def _decide_both(registration, sequence, data, committing) -> None:
    """The same reports through each path, each message of its own; ``committing()`` runs the
    on-commit callbacks (the signals) of what it wraps."""
    n = next(_ids)
    alone, together = f"SMa{n:030d}", f"SMt{n:030d}"  # one length: keys sort alike
    told = {alone: [], together: []}

    def receiver(sender, message, previous_status, status, **kwargs):
        told[message.provider_message_id].append((previous_status, status))

    message_status_changed.connect(receiver)
    try:
        for sid in (alone, together):
            if registration is not None:
                register_outbound(provider="twilio", provider_message_id=sid, **registration)
        for fields in sequence:
            times = data.draw(st.integers(1, 2), label="deliveries")  # 2: a redelivery
            for _ in range(times):
                for sid in (alone, together):
                    raw = None
                    if sid == alone:  # with its request: the webhook's lone report
                        raw = RawRequest("twilio", "POST", "/webhooks/twilio/status/", b"x", {})
                    with committing():
                        ingest([Event(provider_message_id=sid, **fields)], raw)
    finally:
        message_status_changed.disconnect(receiver)
    one, other = (Message.objects.get(provider_message_id=sid) for sid in (alone, together))
    assert _summary(one, alone) == _summary(other, together)
    if all(f["provider_occurred_at"] for f in sequence):  # else "now" decides the times
        assert (one.first_sent_at, one.delivered_at) == (other.first_sent_at, other.delivered_at)
    assert told[alone] == told[together]
    events = [
        list(
            MessageEvent.objects.filter(message=message)
            .order_by("id")
            .values_list("status", "applied", "duplicate_count", "error_code")
        )
        for message in (one, other)
    ]
    assert events[0] == events[1]


def test_keys_compare_by_code_point_whatever_the_columns_collation():
    """Python compares text by code point ("B" before "a"); a database whose columns sort by
    language ("a" before "B") must not change which of two reports decides."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_collation WHERE collname = 'en-US-x-icu'")
        if cursor.fetchone() is None:
            pytest.skip("PostgreSQL built without ICU")
        for name in ("error_code", "status_event_key"):  # undone with the test's transaction
            length = Message._meta.get_field(name).max_length
            cursor.execute(
                f"ALTER TABLE sms_delivery_message ALTER COLUMN {name} "  # noqa: S608
                f'TYPE varchar({length}) COLLATE "en-US-x-icu"'
            )
    raw = RawRequest("twilio", "POST", "/webhooks/twilio/status/", b"x", {})
    when = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for code in ("a", "B"):
        ingest([Event(status=Status.FAILED, error_code=code, provider_occurred_at=when)], raw)
    assert Message.objects.get().error_code == max("a", "B") == "a"


def test_the_statements_fit_psycopg_s_parse_cache():
    """psycopg parses a statement's placeholders again on every call when it is longer than
    4 kB or has more than 50 parameters (``psycopg._queries``): a quarter of a report's time
    in the web worker. A column added to the event, the request or the rule has to keep the
    statements of a report, of a redelivery and of a new message under both."""
    import psycopg._queries
    from django.db import connection

    executed = []

    def spy(execute, sql, params, many, context):
        if sql.startswith("WITH"):  # not the test transaction's savepoints
            executed.append((len(sql.encode()), len(params)))
        return execute(sql, params, many, context)

    raw = RawRequest("twilio", "POST", "/webhooks/twilio/status/", b"x", {})
    with connection.execute_wrapper(spy):
        for status in (Status.SENT, Status.SENT, Status.DELIVERED):  # new, redelivery, known
            ingest([Event(status=status, recipient="+14155550100")], raw)
    assert len(executed) == 4
    for length, parameters in executed:
        assert length <= psycopg._queries.MAX_CACHED_STATEMENT_LENGTH == 4096
        assert parameters <= psycopg._queries.MAX_CACHED_STATEMENT_PARAMS == 50


def _stored(message: Message) -> dict:
    return {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields}


def test_receivers_get_the_message_as_it_is_stored(django_capture_on_commit_callbacks):
    """The message receivers are given is read back from the statement's update by column
    name: every field as the database holds it (the table's columns are not in the model's
    order: migrations appended some)."""
    original = register_outbound(
        provider="twilio", provider_message_id="SMfirst", to="+14155550100"
    )
    message = register_outbound(
        provider="twilio", provider_message_id="SMretry", to="+14155550100", template_key="otp"
    )
    Message.objects.filter(pk=message.pk).update(retry_of=original, idempotency_key="idem-1")
    given = []

    def receiver(sender, message, **kwargs):
        given.append(message)

    message_status_changed.connect(receiver)
    try:
        raw = RawRequest("twilio", "POST", "/webhooks/twilio/status/", b"x", {})
        with django_capture_on_commit_callbacks(execute=True):
            ingest([Event(provider_message_id="SMretry", status=Status.DELIVERED)], raw)
    finally:
        message_status_changed.disconnect(receiver)
    (received,) = given
    assert _stored(received) == _stored(Message.objects.get(pk=message.pk))
    assert received.retry_of_id == original.pk and received.registered_at is not None


def test_a_column_a_newer_release_added_is_left_out():
    """During a rolling deploy the table may have a column this release's model does not know:
    the report is stored and the message read back without it."""
    from django.db import connection

    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute("ALTER TABLE sms_delivery_message ADD COLUMN from_next_release text")
    register_outbound(provider="twilio", provider_message_id="SMdeploy", to="+14155550100")
    raw = RawRequest("twilio", "POST", "/webhooks/twilio/status/", b"x", {})
    result = ingest([Event(provider_message_id="SMdeploy", status=Status.DELIVERED)], raw)
    ((message, previous, status, _),) = result.transitions
    assert (previous, status) == (Status.ACCEPTED, Status.DELIVERED)
    assert message.current_status == Status.DELIVERED and message.registered_at is not None
