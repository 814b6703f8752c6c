"""Deferred drains on a real PostgreSQL server: a batch holds every lock it takes until it
commits, so two drains must never wait for each other in a circle, and a request that fails
inside a batch must leave nothing behind while the others are applied."""

import threading

import pytest
from django.db import OperationalError, connections

from delivery import deferred
from delivery.events import NormalizedEvent
from delivery.ingest import register_outbound
from delivery.lifecycle import Status
from delivery.models import Message, MessageEvent, RawWebhook, Suppression
from providers.twilio import TwilioProvider
from tests.fixtures import twilio
from tests.locks import wait_for_a_lock_waiter
from tests.providers.test_twilio import post

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

A, B, C = ("SM" + c * 32 for c in "abc")
PERSON, SENDER = "+15558675310", "+15017122661"


@pytest.fixture(autouse=True)
def deferred_mode(deferred_on_dummy_tasks):
    """The tests run the drains themselves."""


def parsed_as(monkeypatch, table):
    """Twilio's parse answers ``table[sid]()`` for a request about ``sid``."""
    real = TwilioProvider.parse

    def parse(self, request):
        sid = request.form.get("MessageSid")
        return table[sid]() if sid in table else real(self, request)

    monkeypatch.setattr(TwilioProvider, "parse", parse)


def reports(*sids, status=Status.SENT, **fields):
    return lambda: [
        NormalizedEvent(
            provider="twilio", provider_message_id=sid, raw_status=status, status=status, **fields
        )
        for sid in sids
    ]


def two_drains(monkeypatch):
    """Drain 1 applies the first request of its batch, then pauses while drain 2 takes its
    own batch and applies it, until drain 2 ends or waits on a lock drain 1 holds; the errors
    either raised."""
    first_applied, second_done = threading.Event(), threading.Event()
    real = deferred._apply_read

    def apply_read(raw, events, reason):
        outcome = real(raw, events, reason)
        if threading.current_thread().name == "drain 1" and not first_applied.is_set():
            first_applied.set()
            wait_for_a_lock_waiter(done=second_done)
        return outcome

    monkeypatch.setattr(deferred, "_apply_read", apply_read)
    errors = []

    def run(wait):
        try:
            if wait:
                first_applied.wait(90)
            deferred._apply_next(set())
        except Exception as exc:  # noqa: BLE001 - reported by the caller's assertion
            errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            if wait:
                second_done.set()
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(False,), name="drain 1"),
        threading.Thread(target=run, args=(True,), name="drain 2"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    return errors


def test_opt_outs_of_one_person_in_two_drains_do_not_deadlock(client, monkeypatch):
    """Found by review: drain 1 took [a failed 21610, b sent] and held the person's new
    suppression row while it went on to b; drain 2 took [b failed 21610], locked b and waited
    for that row. An opt-out is now applied in a transaction of its own."""
    for sid in (A, B):
        register_outbound(
            provider="twilio", provider_message_id=sid, to=PERSON, sender_identity=SENDER
        )
    assert post(client, twilio.callback("failed", sid=A, ErrorCode="21610")).status_code == 200
    assert post(client, twilio.callback("sent", sid=B)).status_code == 200
    assert post(client, twilio.callback("failed", sid=B, ErrorCode="21610")).status_code == 200
    monkeypatch.setattr(deferred, "BATCH", 2)
    assert two_drains(monkeypatch) == []
    assert not RawWebhook.objects.filter(pending=True).exists()
    assert Suppression.objects.count() == 1
    assert Message.objects.get(provider_message_id=B).current_status == Status.FAILED


def test_a_request_naming_two_messages_in_a_batch_does_not_deadlock(client, monkeypatch):
    """Found by review: drain 1 [R1 = {a, c}, R2 = {b}] locked a, c, b; drain 2 [R3 = {b},
    R4 = {c}] locked b, then waited for c. A request naming several messages is now applied
    on its own."""
    for sid in (A, B, C):
        register_outbound(provider="twilio", provider_message_id=sid, to=PERSON)
    for mark in ("SMr1", "SMr2", "SMr3", "SMr4"):
        assert post(client, twilio.callback("sent", sid=mark)).status_code == 200
    delivered = Status.DELIVERED
    table = {
        "SMr1": reports(A, C),
        "SMr2": reports(B),
        "SMr3": reports(B, status=delivered),
        "SMr4": reports(C, status=delivered),
    }
    parsed_as(monkeypatch, table)
    monkeypatch.setattr(deferred, "BATCH", 2)
    assert two_drains(monkeypatch) == []
    assert not RawWebhook.objects.filter(pending=True).exists()
    assert Message.objects.get(provider_message_id=C).current_status == Status.DELIVERED


def test_a_request_refused_inside_ingest_leaves_nothing_and_the_others_apply(client, monkeypatch):
    """B's report names an event id A's has: ingest refuses it (its savepoint rolls back,
    with the message it created); it is kept for review and A and C are applied."""
    for sid in (A, B, C):
        assert post(client, twilio.callback("sent", sid=sid)).status_code == 200
    same_id = {"provider_event_id": "EV1", "recipient": PERSON}
    parsed_as(monkeypatch, {A: reports(A, **same_id), B: reports(B, **same_id)})
    assert sorted(deferred._apply_next(set())) == ["applied", "applied", "unreadable"]
    assert not RawWebhook.objects.filter(pending=True).exists()
    assert not Message.objects.filter(provider_message_id=B).exists()
    kept = RawWebhook.objects.get(parse_error__contains="another message")
    assert kept.recipient_hash == ""
    assert MessageEvent.objects.count() == 2


def test_a_database_error_inside_a_batch_leaves_all_of_it_pending(client, monkeypatch):
    for sid in (A, B, C):
        assert post(client, twilio.callback("sent", sid=sid)).status_code == 200
    real, calls = deferred.ingest, []

    def failing_second(events, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OperationalError("the server went away")
        return real(events, **kwargs)

    monkeypatch.setattr(deferred, "ingest", failing_second)
    with pytest.raises(OperationalError):
        deferred._apply_next(set())
    assert RawWebhook.objects.filter(pending=True).count() == 3
    assert not Message.objects.exists()
