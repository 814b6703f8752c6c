"""Concurrency on a real PostgreSQL server: racing deliveries must not double-apply or lose updates."""

import contextlib
import threading

import pytest
from django.db import connection, connections

from delivery.ingest import RawRequest, ingest
from delivery.lifecycle import Status
from delivery.models import Message, MessageEvent, RawWebhook
from delivery.signals import message_status_changed
from tests.factories import NormalizedEventFactory as Event
from tests.locks import wait_for_a_lock_waiter

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(targets):
    """Start every callable at the same moment, each in its own thread and connection."""
    barrier = threading.Barrier(len(targets))
    errors = []

    def runner(target):
        try:
            barrier.wait()
            target()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=runner, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


@pytest.fixture
def signals():
    seen = []
    lock = threading.Lock()

    def receiver(sender, message, previous_status, status, **kwargs):
        with lock:
            seen.append((previous_status, status))

    message_status_changed.connect(receiver)
    yield seen
    message_status_changed.disconnect(receiver)


@pytest.fixture(params=["one statement", "transaction"])
def report(request):
    """``ingest()`` as the webhook calls it, with the request (a lone report: one statement),
    or as a replay does, without (a transaction)."""

    def report(events):
        raw = None
        if request.param == "one statement":
            raw = RawRequest("twilio", "POST", "/webhooks/twilio/status/", b"x", {})
        return ingest(events, raw)

    report.stores_requests = request.param == "one statement"
    return report


def test_runs_on_postgresql():
    assert connection.vendor == "postgresql"


def test_same_event_from_eight_threads_applies_once(signals, report):
    delivered = Event(status=Status.DELIVERED)
    race([lambda: report([delivered])] * 8)
    assert RawWebhook.objects.count() == (8 if report.stores_requests else 0)
    event = MessageEvent.objects.get()
    assert event.applied and event.duplicate_count == 7
    assert Message.objects.get().current_status == Status.DELIVERED
    assert signals == [("accepted", "delivered")]


@pytest.mark.parametrize("attempt", range(5))
def test_two_statuses_racing_end_in_the_precedence_result(signals, attempt, report):
    race(
        [
            lambda: report([Event(status=Status.SENT)]),
            lambda: report([Event(status=Status.DELIVERED)]),
        ]
    )
    assert Message.objects.get().current_status == Status.DELIVERED
    assert MessageEvent.objects.count() == 2
    # sent may or may not win its race to be applied first; delivered always ends it. Each
    # request sends its own signal after its own commit, so the two may be heard in either order.
    assert sorted(signals) in (
        [("accepted", "delivered")],
        [("accepted", "sent"), ("sent", "delivered")],
    )


def test_many_messages_and_statuses_at_once_lose_nothing(report):
    statuses = [Status.SENT, Status.DELIVERED, Status.FAILED, Status.UNDELIVERED]
    targets = [
        (lambda sid=f"SM{i:032x}", s=s: report([Event(provider_message_id=sid, status=s)]))
        for i in range(3)
        for s in statuses
    ]
    race(targets)
    assert MessageEvent.objects.count() == 12
    assert set(Message.objects.values_list("current_status", flat=True)) == {Status.DELIVERED}


@pytest.mark.parametrize("known", [False, True], ids=["new messages", "known messages"])
def test_requests_naming_the_same_messages_in_two_orders_do_not_deadlock(known):
    """Reports of one request are applied in (provider, message id) order: [X, Y] and [Y, X]
    racing lock X then Y both, instead of deadlocking (a 503 and a retry for one of them)."""
    for round in range(10):
        x, y = f"SMx{round:030d}", f"SMy{round:030d}"
        if known:
            ingest([Event(provider_message_id=x), Event(provider_message_id=y)])
        one = [
            Event(provider_message_id=x, status=Status.SENT),
            Event(provider_message_id=y, status=Status.SENT),
        ]
        other = [
            Event(provider_message_id=y, status=Status.DELIVERED),
            Event(provider_message_id=x, status=Status.DELIVERED),
        ]
        race([lambda one=one: ingest(one), lambda other=other: ingest(other)])
    delivered = Message.objects.filter(current_status=Status.DELIVERED).count()
    assert delivered == 20


def test_the_same_stop_from_eight_threads_is_one_opt_out():
    from delivery.events import ConsentChange, InboundEvent
    from delivery.models import InboundMessage
    from delivery.signals import consent_changed

    seen = []
    lock = threading.Lock()

    def receiver(sender, inbound, opted_out, **kwargs):
        with lock:
            seen.append(opted_out)

    consent_changed.connect(receiver)
    stop = InboundEvent(
        provider="twilio",
        provider_message_id="SM" + "5" * 32,
        sender="+14155550100",
        our_identity="+15017122661",
        keyword="STOP",
        consent=ConsentChange.OPT_OUT,
    )
    try:
        race([lambda: ingest([stop])] * 8)
    finally:
        consent_changed.disconnect(receiver)
    assert InboundMessage.objects.count() == 1
    assert seen == [True]


def test_one_event_id_raced_on_eight_messages_is_stored_once_and_never_merged(report):
    """Eight reports carrying the same provider event id for eight different messages: one is
    stored; the others are refused as unreadable (kept for review by the view), and no message
    is left without events."""
    from delivery.exceptions import MalformedPayload

    refused = []
    lock = threading.Lock()

    def deliver(n):
        telnyx = Event(
            provider="telnyx",
            provider_message_id=f"msg-{n}",
            provider_event_id="5f2c7e1a-3b4d-4c8e-9a6f-1d2e3f4a5b6c",
            status=Status.DELIVERED,
        )
        try:
            report([telnyx])
        except MalformedPayload:
            with lock:
                refused.append(n)

    race([lambda n=n: deliver(n) for n in range(8)])
    assert MessageEvent.objects.count() == Message.objects.count() == 1
    assert len(refused) == 7
    assert MessageEvent.objects.get().duplicate_count == 0


@pytest.mark.parametrize(
    "inside",
    [None, "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"],
    ids=["autocommit", "read committed", "repeatable read", "serializable"],
)
def test_an_event_id_stored_for_another_new_message_meanwhile_is_refused_as_such(inside):
    """Two reports of two messages we did not know carry one provider event id. The second's
    statement inserts its message, then waits on the first's uncommitted event; once that
    commits, the second is refused as another message's event (for review), not as a value
    the database refused, and leaves nothing behind; inside a caller's transaction too, at
    any isolation level (its snapshot may never show the other event: a statement run again
    would meet it again)."""

    from django.db import transaction

    from delivery.exceptions import MalformedPayload

    def telnyx(sid):
        return Event(
            provider="telnyx",
            provider_message_id=sid,
            provider_event_id="5f2c7e1a-3b4d-4c8e-9a6f-1d2e3f4a5b6c",
            status=Status.DELIVERED,
        )

    raw = RawRequest("telnyx", "POST", "/webhooks/telnyx/status/", b"x", {})
    stored, release, refused, errors = threading.Event(), threading.Event(), [], []

    def first():
        try:
            with transaction.atomic():
                ingest([telnyx("msg-1")], raw)
                stored.set()
                release.wait(90)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    def second():
        stored.wait(90)
        try:
            with transaction.atomic() if inside else contextlib.nullcontext():
                if inside:
                    with connection.cursor() as cursor:
                        cursor.execute(f"SET TRANSACTION ISOLATION LEVEL {inside}")
                try:
                    ingest([telnyx("msg-2")], raw)
                except MalformedPayload as exc:
                    refused.append(str(exc.detail))
                # The caller's transaction goes on, and commits.
                assert not Message.objects.filter(provider_message_id="msg-2").exists()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    waiting = wait_for_a_lock_waiter()  # the second, on the first's event
    release.set()
    for thread in threads:
        thread.join(90)
    assert errors == []
    assert waiting == 1
    assert len(refused) == 1 and "already recorded for another message" in refused[0]
    assert list(Message.objects.values_list("provider_message_id", flat=True)) == ["msg-1"]
    assert MessageEvent.objects.count() == RawWebhook.objects.count() == 1


def test_values_postgresql_refuses_are_fitted_before_they_reach_it():
    """NUL in text, lone surrogates and counts beyond smallint: PostgreSQL itself would refuse
    each (DataError / UnicodeEncodeError); ingest stores them fitted instead."""
    report = Event(
        provider_message_id="SM\x00" + "9" * 100,
        status=Status.UNDELIVERED,
        raw_status="undelivered\ud800",
        error_detail="bad\x00",
        segments=70000,
        raw_payload={"To": "\x00", "x": "\ud800", "n": float("nan"), "big": 10**40},
    )
    ingest([report])
    event = MessageEvent.objects.get()
    assert "\x00" not in event.message.provider_message_id and event.message.segments is None
    assert event.raw_payload["big"] == 10**40 and event.raw_payload["To"] == "\x00"


def test_deferred_tasks_racing_apply_each_request_once_and_summaries_hold(
    client, deferred_on_dummy_tasks
):
    """Deferred mode with several workers: every stored request is raced for by two drains
    (``SKIP LOCKED``) and by sweepers applying each one twice, in shuffled order (three
    threads); each is applied once, duplicates are counted, and every summary is the one its
    events decide."""
    import random

    from delivery import deferred
    from tests.fixtures import twilio
    from tests.providers.test_twilio import post

    lives = [("sent", "delivered"), ("sent", "undelivered"), ("queued", "sent", "failed")]
    for n in range(30):
        for word in lives[n % 3] + lives[n % 3][-1:]:  # the last report sent twice
            extra = {"ErrorCode": "30003"} if word in ("undelivered", "failed") else {}
            assert (
                post(client, twilio.callback(word, sid=f"SM{n:032d}", **extra)).status_code == 200
            )
    ids = list(RawWebhook.objects.values_list("pk", flat=True))
    assert len(ids) == 100 and not MessageEvent.objects.exists()
    work = ids * 2
    random.Random(8).shuffle(work)
    shares = [work[i::3] for i in range(3)]
    outcomes, drained = [], []
    race(
        [lambda share=share: outcomes.extend(map(deferred.apply, share)) for share in shares]
        + [lambda: drained.append(deferred.drain.call()["applied"]) for _ in range(2)]
    )
    assert outcomes.count(deferred.Outcome.APPLIED) + sum(drained) == 100
    assert not RawWebhook.objects.filter(pending=True).exists()
    duplicates = sum(MessageEvent.objects.values_list("duplicate_count", flat=True))
    assert MessageEvent.objects.count() + duplicates == 100 and duplicates == 30
    expected = {0: Status.DELIVERED, 1: Status.UNDELIVERED, 2: Status.FAILED}
    for message in Message.objects.all():
        assert message.current_status == expected[int(message.provider_message_id[2:]) % 3]


def test_drains_racing_over_one_backlog_lock_messages_in_one_order(
    client, deferred_on_dummy_tasks, caplog
):
    """Four drains take batches of a backlog whose messages' reports are spread all over it:
    each applies its batch in (provider, message id) order, so no two lock messages in two
    orders (PostgreSQL would end one of them as a deadlock, and its batch would wait for
    another drain)."""
    import random

    from delivery import deferred
    from tests.fixtures import twilio
    from tests.providers.test_twilio import post

    reports = [(n, word) for n in range(24) for word in ("queued", "sent", "delivered")] * 2
    random.Random(5).shuffle(reports)
    for n, word in reports:
        assert post(client, twilio.callback(word, sid=f"SM{n:032d}")).status_code == 200
    applied = []
    with caplog.at_level("WARNING", logger="delivery.deferred"):
        race([lambda: applied.append(deferred.drain.call()["applied"]) for _ in range(4)])
    assert [r.getMessage() for r in caplog.records if r.name == "delivery.deferred"] == []
    assert sum(applied) == len(reports)
    assert set(Message.objects.values_list("current_status", flat=True)) == {Status.DELIVERED}


def test_indexes_nothing_reads_are_gone():
    """Each webhook maintains only indexes something reads (migration 0008)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN "
            "('sms_delivery_message', 'sms_delivery_messageevent')"
        )
        names = {row[0] for row in cursor.fetchall()}
    assert "sms_evt_status" not in names and not [n for n in names if n.endswith("_like")]
    assert {"sms_evt_received", "sms_evt_timeline", "sms_msg_error_cat"} <= names


@pytest.mark.parametrize("attempt", range(8))
def test_a_callback_racing_the_send_answer_ends_as_one_message(attempt, report):
    """send_sms records the message, then the API answer gives it the provider's id while the
    first callback for that id may be creating a message of its own: whichever commits first,
    one message is left, with the callback's event and the answer's id."""
    from delivery.outgoing import Sent
    from delivery.sending import _attach, _record

    sid = "SM" + "3" * 32
    ours = _record("twilio", "+14155550123", consent=None, sender_identity="+15017122661")
    race(
        [
            lambda: _attach(ours, Sent(provider_message_id=sid, raw_status="queued")),
            lambda: report([Event(provider_message_id=sid, status=Status.DELIVERED)]),
        ]
    )
    message = Message.objects.get()  # ours, or the callback's with ours folded into it
    assert message.provider_message_id == sid and message.recipient_hash == ours.recipient_hash
    assert message.registered_at == ours.registered_at
    assert message.current_status == Status.DELIVERED and message.events.count() == 1


def test_side_effect_claims_racing_let_one_win():
    """Four runs of the email fallback task at once (a backend delivering it several times):
    one claims it and sends, the others see the claim once it commits."""
    from django.core import mail

    from tests.test_side_effects import send_fallback_email

    ingest([Event(status=Status.UNDELIVERED)])
    message_id = Message.objects.get().pk
    outcomes = []
    race([lambda: outcomes.append(send_fallback_email.call(message_id)) for _ in range(4)])
    assert sorted(outcomes) == [False, False, False, True] and len(mail.outbox) == 1


def test_indexes_added_to_busy_tables_are_built_concurrently():
    """Migrations that index the message and raw-request tables must not block webhooks."""
    import io

    from django.core.management import call_command

    for migration in ("0007", "0009"):
        out = io.StringIO()
        call_command("sqlmigrate", "sms_delivery", migration, stdout=out)
        busy = [
            line
            for line in out.getvalue().splitlines()
            if "INDEX" in line
            and ('"sms_delivery_message"' in line or '"sms_delivery_rawwebhook"' in line)
        ]
        assert busy and all("CONCURRENTLY" in line for line in busy), busy


def test_two_sends_racing_with_one_idempotency_key_send_once(sms_delivery_settings):
    import responses as fake_http

    from delivery.sending import send_sms
    from tests.test_sending import CREATE_URL, created

    sms_delivery_settings["WEBHOOK_BASE_URL"] = "https://sms.example.com"
    results = []
    with fake_http.RequestsMock(assert_all_requests_are_fired=False) as api:
        api.post(CREATE_URL, json=created(), status=201)
        race(
            [
                lambda: results.append(
                    send_sms("+14155550123", "Hi", sender="+15017122661", idempotency_key="k:1")
                )
                for _ in range(4)
            ]
        )
        assert len(api.calls) == 1
    assert len({m.pk for m in results}) == 1 and Message.objects.count() == 1


def test_rollup_rebuilds_racing_count_each_message_once():
    """The cron's rebuild and the alert command's at once: neither keeps the other's rows."""
    from datetime import timedelta

    from django.db.models import Sum
    from django.utils import timezone

    from delivery import analytics
    from delivery.models import DeliveryRollup

    for n in range(40):
        ingest([Event(provider_message_id=f"SMroll{n:028d}", status=Status.DELIVERED)])
    start, end = timezone.now() - timedelta(days=2), timezone.now()
    race([lambda: analytics.rebuild(start, end) for _ in range(4)])
    assert DeliveryRollup.objects.aggregate(n=Sum("messages"))["n"] == 40


def test_an_opt_out_between_two_message_locks_does_not_deadlock(monkeypatch):
    """A request naming two messages of one person, the first an opt-out, races an opt-out on
    the second: the person's suppression row is recorded once every message of the request is
    locked (taken between the two locks, it closed a circle with the other request)."""

    from delivery import ingest as ingest_module
    from delivery.ingest import register_outbound
    from delivery.lifecycle import ErrorCategory
    from delivery.models import Suppression

    person, sender = "+15558675310", "+15017122661"
    for sid in ("SMa", "SMb"):
        register_outbound(
            provider="twilio", provider_message_id=sid, to=person, sender_identity=sender
        )

    def opted_out(sid):
        return Event(
            provider_message_id=sid,
            status=Status.FAILED,
            error_code="21610",
            error_category=ErrorCategory.OPT_OUT,
            recipient=person,
        )

    first_done, second_done = threading.Event(), threading.Event()
    real = ingest_module._ingest_one

    def pausing(event, result, using, person):
        real(event, result, using, person)
        if threading.current_thread().name == "two messages" and not first_done.is_set():
            first_done.set()
            # The other request runs meanwhile, until it ends or waits on a lock this one holds.
            wait_for_a_lock_waiter(done=second_done)

    monkeypatch.setattr(ingest_module, "_ingest_one", pausing)

    def second():
        first_done.wait(90)
        try:
            ingest([opted_out("SMb")])
        finally:
            second_done.set()

    two = [opted_out("SMa"), Event(provider_message_id="SMb", status=Status.SENT)]
    errors = []

    def run(target):
        try:
            target()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(lambda: ingest(two),), name="two messages"),
        threading.Thread(target=run, args=(second,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert errors == []
    assert Suppression.objects.count() == 1
