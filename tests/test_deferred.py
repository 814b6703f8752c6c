"""Deferred processing: the webhook stores and answers, a drain applies (``delivery.deferred``).

The tasks run on the task framework's own backends: Dummy (stores what was enqueued, runs
nothing: the tests run it, in any order, as often as they like) and Immediate (runs at once).
"""

import io
import random
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from delivery import deferred
from delivery.checks import Codes, check_processing
from delivery.lifecycle import Status
from delivery.models import Message, MessageEvent, RawWebhook
from providers.twilio import TwilioProvider
from tests.fixtures import twilio
from tests.privacy import decrypted_text, numbers_in
from tests.providers.test_twilio import post

pytestmark = pytest.mark.django_db

#: The drain's deadline as shipped (the fixture below shortens it for the other tests).
LOOK_FOR = deferred.LOOK_FOR
FRAMEWORK = deferred.task.__module__.split(".")[0]  # "django" (6.x) or "django_tasks" (5.2)
BACKENDS = "django.tasks.backends" if FRAMEWORK == "django" else "django_tasks.backends"
SID = "SM" + "7" * 32


def backend(name):
    return {"default": {"BACKEND": f"{BACKENDS}.{name}"}}


_wall = time.time  # the real clock, whatever a test puts in deferred.time


class StillClock:
    """``delivery.deferred``'s clock, moved only by its sleeps and by the test: however slow the
    machine, the throttle and a drain's deadline see the times the test sets.

    A sleep that would pass ``hold_at`` waits, the clock standing there, until ``release``."""

    def __init__(self, hold_at: float = float("inf")):
        self.now = 0.0
        self.hold_at = hold_at
        self.held, self.release = threading.Event(), threading.Event()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return _wall() + self.now

    def sleep(self, seconds: float) -> None:
        if self.now + seconds > self.hold_at and not self.release.is_set():
            self.held.set()
            assert self.release.wait(60), "the test never released the clock"
        self.now += seconds


@pytest.fixture(autouse=True)
def commits_run(monkeypatch):
    """The tests run inside a transaction that never commits: what waits for the commit (the
    task's enqueue) runs at once, as it does for the webhook view (autocommit)."""
    monkeypatch.setattr(deferred.transaction, "on_commit", lambda func, using=None: func())
    monkeypatch.setattr(deferred._Throttle, "last", float("-inf"))  # no drain enqueued yet
    monkeypatch.setattr(deferred, "LOOK_FOR", 0.05)  # drains run here: no need to wait long


@pytest.fixture
def queued(settings, sms_delivery_settings):
    """Deferred mode on a backend that keeps what is enqueued and runs nothing."""
    sms_delivery_settings["PROCESSING"] = "deferred"
    settings.TASKS = backend("dummy.DummyBackend")
    from importlib import import_module

    tasks = import_module(FRAMEWORK + (".tasks" if FRAMEWORK == "django" else ""))
    store = tasks.task_backends["default"]
    store.clear()
    yield store
    store.clear()


def test_the_answer_follows_one_stored_request_and_a_drain_applies_it(client, queued):
    response = post(client, twilio.callback("delivered", sid=SID))
    assert response.status_code == 200 and response.json()["deferred"] is True
    raw = RawWebhook.objects.get()
    assert raw.pending and not Message.objects.exists() and not MessageEvent.objects.exists()
    assert [result.task.name for result in queued.results] == ["drain"]

    assert deferred.drain.call() == {"applied": 1, "unreadable": 0, "waiting for settings": 0}
    raw.refresh_from_db()
    assert not raw.pending and raw.recipient_hash
    assert Message.objects.get().current_status == Status.DELIVERED
    assert MessageEvent.objects.get().raw_webhook == raw
    # Run again (a redelivered task, a sweeper at the same time), it changes nothing.
    assert deferred.apply(raw.pk) == deferred.Outcome.DONE_ALREADY
    assert deferred.drain.call()["applied"] == 0
    assert MessageEvent.objects.count() == 1


def test_a_process_enqueues_one_drain_a_second_and_it_applies_them_all(client, queued, monkeypatch):
    clock = StillClock()
    monkeypatch.setattr(deferred, "time", clock)
    for word in ("queued", "sent", "delivered"):
        assert post(client, twilio.callback(word, sid=SID)).status_code == 200
    assert len(queued.results) == 1
    clock.now += deferred.ENQUEUE_EVERY
    assert post(client, twilio.callback("read", sid=SID)).status_code == 200
    assert len(queued.results) == 2
    assert deferred.drain.call()["applied"] == 4
    assert Message.objects.get().current_status == Status.READ


@pytest.mark.django_db(transaction=True)
def test_a_request_stored_after_the_enqueue_is_applied_by_the_drain_still_looking(
    client, queued, monkeypatch
):
    """The guarantee that makes the throttle safe: a request whose process skipped the enqueue
    committed within ENQUEUE_EVERY of that enqueue, and the drain looks until after then.

    The second request comes just before ENQUEUE_EVERY has passed on the clock."""
    clock = StillClock(hold_at=deferred.ENQUEUE_EVERY - deferred.POLL_EVERY)
    monkeypatch.setattr(deferred, "time", clock)
    monkeypatch.setattr(deferred, "LOOK_FOR", LOOK_FOR)
    assert post(client, twilio.callback("sent", sid=SID)).status_code == 200
    counts = {}

    def run_drain():
        try:
            counts.update(deferred.drain.call(**result.kwargs))
        finally:
            connections.close_all()

    (result,) = queued.results
    drain = threading.Thread(target=run_drain)
    drain.start()
    while not clock.held.wait(0.05):
        assert drain.is_alive(), "the drain stopped looking before ENQUEUE_EVERY had passed"
    assert post(client, twilio.callback("delivered", sid=SID)).status_code == 200
    assert len(queued.results) == 1  # throttled: no drain of its own
    clock.release.set()
    drain.join()
    assert counts["applied"] == 2
    assert Message.objects.get().current_status == Status.DELIVERED


def test_a_drain_that_keeps_finding_work_hands_over_to_a_new_one(client, queued, monkeypatch):
    for word in ("sent", "delivered"):
        assert post(client, twilio.callback(word, sid=SID)).status_code == 200
    queued.clear()
    monkeypatch.setattr(deferred, "DRAIN_AT_MOST", 0)
    monkeypatch.setattr(deferred, "BATCH", 1)
    assert deferred.drain.call()["applied"] == 1
    assert len(queued.results) == 1  # its successor
    assert deferred.drain.call()["applied"] == 1


def test_a_drain_applies_a_batch_in_one_transaction_locking_messages_in_order(client, queued):
    """One query takes the batch, its requests are applied in (provider, message id) order
    (two drains never lock messages in two orders) and one UPDATE clears their flags."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sids = ["SM" + c * 32 for c in "cab"]
    for word in ("sent", "delivered"):
        for sid in sids:
            assert post(client, twilio.callback(word, sid=sid)).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        outcomes = deferred._apply_next(set())
    assert outcomes == [deferred.Outcome.APPLIED] * 6
    sql = [q["sql"] for q in queries.captured_queries]
    taken = [q for q in sql if q.startswith("SELECT") and '"sms_delivery_rawwebhook"' in q]
    assert len(taken) == 1
    cleared = [q for q in sql if q.startswith('UPDATE "sms_delivery_rawwebhook" SET "pending"')]
    assert len(cleared) == 1
    locked = [
        sid
        for q in sql
        if ' FROM "sms_delivery_message" WHERE "provider"' in q
        or q.startswith("WITH")
        or q.startswith('UPDATE "sms_delivery_message" SET "updated_at" = "updated_at"')
        for sid in sids
        if sid in q
    ]
    assert locked == sorted(locked) and len(locked) == 6
    assert not RawWebhook.objects.filter(pending=True).exists()
    assert set(Message.objects.values_list("current_status", flat=True)) == {Status.DELIVERED}


def test_an_unreadable_request_in_a_batch_is_kept_and_the_others_applied(
    client, queued, monkeypatch
):
    real = TwilioProvider.parse
    broken_sid = "SM" + "b" * 32

    def parse(self, request):
        if broken_sid in request.text:
            raise ValueError("a bug in the adapter")
        return real(self, request)

    for sid in ("SM" + "a" * 32, broken_sid, "SM" + "c" * 32):
        assert post(client, twilio.callback("delivered", sid=sid)).status_code == 200
    monkeypatch.setattr(TwilioProvider, "parse", parse)
    outcomes = deferred._apply_next(set())
    assert sorted(outcomes) == ["applied", "applied", "unreadable"]
    assert not RawWebhook.objects.filter(pending=True).exists()
    kept = RawWebhook.objects.get(parse_error__startswith="Unreadable")
    assert kept.parse_error == "Unreadable request (ValueError)."
    assert Message.objects.count() == 2


def test_an_opt_out_in_a_batch_is_applied_in_a_transaction_of_its_own(client, queued, monkeypatch):
    """An opt-out adds a suppression row of a person, out of the batch's lock order: it is
    applied once the batch is committed, on its own."""
    from delivery.models import Suppression

    other = "SM" + "1" * 32
    assert post(client, twilio.callback("failed", sid=SID, ErrorCode="21610")).status_code == 200
    opt_out = RawWebhook.objects.get()
    assert post(client, twilio.callback("sent", sid=other)).status_code == 200
    alone, real = [], deferred.apply
    monkeypatch.setattr(deferred, "apply", lambda raw_id: alone.append(raw_id) or real(raw_id))
    assert sorted(deferred._apply_next(set())) == ["applied", "applied"]
    assert alone == [opt_out.pk]
    assert Suppression.objects.count() == 1
    assert not RawWebhook.objects.filter(pending=True).exists()


def test_settings_that_cannot_apply_a_request_set_aside_pass_its_provider_over(
    client, queued, monkeypatch
):
    """Found by review: as in the batch, once ingest says the settings cannot apply a
    provider's request, the drain passes the provider over (it took the same requests again at
    once, and never slept)."""
    from delivery.exceptions import ConfigurationError

    assert post(client, twilio.callback("failed", sid=SID, ErrorCode="21610")).status_code == 200

    def unconfigured(*args, **kwargs):
        raise ConfigurationError("SMS_DELIVERY['HASH_KEY'] is not set")

    monkeypatch.setattr(deferred, "ingest", unconfigured)
    passed_over: set[str] = set()
    assert deferred._apply_next(passed_over) == ["waiting for settings"]
    assert passed_over == {"twilio"} and deferred._apply_next(passed_over) == []
    assert RawWebhook.objects.get().pending


def test_a_database_error_applying_a_request_set_aside_keeps_the_batch_s_outcomes(
    client, queued, monkeypatch
):
    """Found by review: the batch is committed by then; the request set aside stays pending
    and the batch's outcomes are still counted."""
    from django.db import OperationalError

    other = "SM" + "1" * 32
    assert post(client, twilio.callback("failed", sid=SID, ErrorCode="21610")).status_code == 200
    assert post(client, twilio.callback("sent", sid=other)).status_code == 200

    def outage(raw_id):
        raise OperationalError("the server went away")

    monkeypatch.setattr(deferred, "apply", outage)
    assert deferred._apply_next(set()) == ["applied"]
    assert RawWebhook.objects.filter(pending=True).count() == 1  # the opt-out: not lost


def test_tasks_out_of_order_and_duplicates_end_as_the_synchronous_path(
    client, queued, status_changes, django_capture_on_commit_callbacks
):
    reports = [
        twilio.callback(word, sid=SID) for word in ("queued", "sent", "delivered", "delivered")
    ]
    for report in reports:
        assert post(client, report).status_code == 200
    ids = list(RawWebhook.objects.values_list("pk", flat=True))
    random.Random(3).shuffle(ids)
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = [deferred.apply(raw_id) for raw_id in ids + ids]
    assert outcomes.count(deferred.Outcome.APPLIED) == 4
    message = Message.objects.get()
    assert message.current_status == Status.DELIVERED
    assert MessageEvent.objects.count() == 3
    assert MessageEvent.objects.get(status=Status.DELIVERED).duplicate_count == 1
    assert status_changes[-1][1] == Status.DELIVERED and len(status_changes) <= 3


def test_an_unreadable_request_goes_to_the_review_queue_not_lost(client, queued, monkeypatch):
    def broken(self, request):
        raise ValueError("a bug in the adapter")

    assert post(client, twilio.callback("delivered", sid=SID)).status_code == 200
    raw = RawWebhook.objects.get()
    monkeypatch.setattr(TwilioProvider, "parse", broken)
    assert deferred.apply(raw.pk) == deferred.Outcome.UNREADABLE
    raw.refresh_from_db()
    assert not raw.pending and raw.parse_error == "Unreadable request (ValueError)."
    assert raw.request_encrypted  # kept for replay after the fix


def test_a_storage_outage_in_the_task_leaves_the_request_pending(client, queued, monkeypatch):
    from django.db import OperationalError

    from delivery import statements

    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    assert post(client, twilio.callback("delivered", sid=SID)).status_code == 200
    raw = RawWebhook.objects.get()
    monkeypatch.setattr(statements, "insert_event", down)
    with pytest.raises(OperationalError):
        deferred.apply(raw.pk)
    raw.refresh_from_db()
    assert raw.pending and not MessageEvent.objects.exists()


def test_a_drain_that_could_not_be_enqueued_is_made_up_for_by_the_sweeper(
    client, queued, monkeypatch, caplog
):
    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    working = type(queued).enqueue
    monkeypatch.setattr(type(queued), "enqueue", refuse)  # the backend fails
    assert post(client, twilio.callback("delivered", sid=SID)).status_code == 200
    assert "its drain not enqueued or run (ConnectionError)" in caplog.text
    assert RawWebhook.objects.get().pending
    # Back up: the next request enqueues a drain at once (the failure reset the throttle).
    monkeypatch.setattr(type(queued), "enqueue", working)
    assert post(client, twilio.callback("delivered", sid=SID, ErrorCode="1")).status_code == 200
    assert len(queued.results) == 1
    RawWebhook.objects.exclude(pk=RawWebhook.objects.order_by("pk")[0].pk).delete()

    out = io.StringIO()
    call_command("sms_delivery_process_pending", stdout=out)  # too recent: left to its task
    assert "0 applied" in out.getvalue()
    RawWebhook.objects.update(received_at=timezone.now() - timedelta(minutes=6))
    call_command("sms_delivery_process_pending", "--dry-run", stdout=out)
    assert "1 stored request(s) waiting" in out.getvalue() and RawWebhook.objects.get().pending
    call_command("sms_delivery_process_pending", stdout=out)
    assert "1 applied" in out.getvalue()
    assert Message.objects.get().current_status == Status.DELIVERED


def test_on_an_immediate_backend_the_request_is_applied_at_once(
    client, settings, sms_delivery_settings
):
    sms_delivery_settings["PROCESSING"] = "deferred"
    settings.TASKS = backend("immediate.ImmediateBackend")
    assert post(client, twilio.callback("delivered", sid=SID)).status_code == 200
    assert Message.objects.get().current_status == Status.DELIVERED
    assert not RawWebhook.objects.get().pending


def test_inbound_messages_are_applied_before_the_answer(client, queued):
    path = "/webhooks/twilio/inbound/"
    response = post(client, twilio.incoming("STOP"), url="http://testserver" + path, path=path)
    assert response.status_code == 200
    assert not RawWebhook.objects.get().pending and queued.results == []


def test_a_pending_request_is_not_purged_and_an_erasure_finds_it(client, queued):
    from delivery import erasure
    from delivery.retention import TARGETS, purge

    assert post(client, twilio.callback("delivered", sid=SID, To="+14155550100")).status_code
    RawWebhook.objects.update(received_at=timezone.now() - timedelta(days=40))
    raw_target = next(t for t in TARGETS if t.model is RawWebhook)
    assert purge(raw_target, timezone.now() - timedelta(days=30)) == 0
    assert RawWebhook.objects.get().request_encrypted
    record = erasure.erase("+14155550100", actor="dpo")
    assert record.touched["raw_requests"] == 1
    assert not numbers_in(decrypted_text(), ("+14155550100",))


@pytest.mark.parametrize("mode, ok", [("sync", True), ("deferred", True), ("later", False)])
def test_the_processing_setting_is_checked(sms_delivery_settings, mode, ok):
    sms_delivery_settings["PROCESSING"] = mode
    errors = check_processing()
    assert (errors == []) is ok
    assert all(error.id == Codes.INVALID_PROCESSING for error in errors)


@pytest.mark.telnyx
def test_a_stop_on_telnyxs_status_url_is_applied_before_the_answer(
    client, queued, sms_delivery_settings
):
    """Telnyx sends every event to one URL: an opt-out there must not wait for a worker."""
    from tests.fixtures import telnyx
    from tests.providers import test_telnyx

    sms_delivery_settings["PROVIDERS"]["telnyx"] = {
        "PUBLIC_KEYS": [test_telnyx.public_key(test_telnyx.CURRENT)]
    }
    from delivery.models import InboundMessage

    assert test_telnyx.post(client, telnyx.inbound("STOP")).status_code == 200
    assert InboundMessage.objects.get().keyword and queued.results == []
    assert not RawWebhook.objects.get().pending
    # A delivery report on the same URL is deferred as usual.
    response = test_telnyx.post(client, telnyx.event("delivered"))
    assert response.json()["deferred"] is True and len(queued.results) == 1


def test_a_settings_problem_in_a_task_leaves_the_request_pending(client, queued, monkeypatch):
    from delivery import stored
    from delivery.exceptions import ConfigurationError

    assert post(client, twilio.callback("delivered", sid=SID)).status_code == 200
    raw = RawWebhook.objects.get()

    def misconfigured(name):
        raise ConfigurationError("The twilio provider needs its SDK.")

    monkeypatch.setattr(stored, "provider_class", misconfigured)
    with pytest.raises(ConfigurationError):
        deferred.apply(raw.pk)
    # A drain passes it over (and goes on with the others); the sweeper counts it.
    assert deferred.drain.call()["waiting for settings"] == 1
    RawWebhook.objects.update(received_at=timezone.now() - timedelta(minutes=6))
    assert deferred.sweep()["waiting for settings"] == 1
    raw.refresh_from_db()
    assert raw.pending and raw.parse_error == ""  # applied once the settings are fixed
    monkeypatch.undo()
    assert deferred.apply(raw.pk) == deferred.Outcome.APPLIED


def test_inside_a_transaction_the_drain_is_enqueued_once_it_commits(
    queued, django_capture_on_commit_callbacks, monkeypatch
):
    from django.db import transaction

    from delivery.ingest import RawRequest

    monkeypatch.undo()  # the real on_commit

    raw = RawRequest("twilio", "POST", "/webhooks/twilio/status/", b"x", {})
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        raw_id = deferred.accept(raw)
        assert queued.results == []
    assert len(callbacks) == 1 and len(queued.results) == 1
    assert RawWebhook.objects.get(pk=raw_id).pending


def test_the_purge_checkpoint_never_passes_a_waiting_request(client, queued):
    """A request skipped because it was waiting must be purged once it has been read."""
    from delivery.retention import TARGETS, checkpoint, purge

    assert post(client, twilio.callback("delivered", sid=SID)).status_code == 200
    raw = RawWebhook.objects.get()
    RawWebhook.objects.update(received_at=timezone.now() - timedelta(days=40))
    target = next(t for t in TARGETS if t.model is RawWebhook)
    cutoff = timezone.now() - timedelta(days=30)
    assert purge(target, cutoff) == 0
    assert checkpoint(target) <= timezone.now() - timedelta(days=40)
    deferred.apply(raw.pk)
    assert purge(target, cutoff + timedelta(days=1)) == 1


def test_deferred_without_a_task_framework_is_503_and_writes_nothing(
    client, sms_delivery_settings, monkeypatch
):
    import sys

    sms_delivery_settings["PROCESSING"] = "deferred"
    monkeypatch.setitem(sys.modules, "delivery.deferred", None)  # its import fails
    assert post(client, twilio.callback("delivered", sid=SID)).status_code == 503
    assert not RawWebhook.objects.exists()


def test_a_misconfigured_provider_is_passed_over_and_the_others_applied(
    client, queued, monkeypatch
):
    """One provider's settings problem must not hold up another's requests, nor be retried on
    every one of its requests by every drain."""
    from delivery import stored
    from delivery.exceptions import ConfigurationError
    from delivery.registry import provider_class

    for word in ("sent", "delivered"):
        assert post(client, twilio.callback(word, sid=SID)).status_code == 200
    RawWebhook.objects.update(provider="vonage")  # as if Vonage's requests, settings broken
    assert post(client, twilio.callback("sent", sid="SM" + "8" * 32)).status_code == 200
    tried = []

    def only_twilio(name):
        tried.append(name)
        if name != "twilio":
            raise ConfigurationError("The vonage provider needs its SDK.")
        return provider_class(name)

    monkeypatch.setattr(stored, "provider_class", only_twilio)
    counts = deferred.drain.call()
    assert counts == {"applied": 1, "unreadable": 0, "waiting for settings": 1}
    assert tried.count("vonage") == 1  # once per drain, not once per request
    assert RawWebhook.objects.filter(pending=True).count() == 2


def test_a_database_error_does_not_end_a_drain_early(client, queued, monkeypatch):
    from django.db import OperationalError

    assert post(client, twilio.callback("delivered", sid=SID)).status_code == 200
    real = deferred._apply_next
    calls = []

    def flaky(passed_over):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("database is locked")
        return real(passed_over)

    monkeypatch.setattr(deferred, "_apply_next", flaky)
    monkeypatch.setattr(deferred, "time", StillClock())  # the failed poll takes no time
    assert deferred.drain.call(enqueued_at=_wall())["applied"] == 1  # a fresh drain


def test_a_late_drain_stops_as_soon_as_nothing_is_left(queued, monkeypatch):
    """Enqueued long ago (the queue was backed up): nothing it covers can still be coming."""
    monkeypatch.setattr(deferred, "LOOK_FOR", 30.0)
    clock = StillClock()
    monkeypatch.setattr(deferred, "time", clock)
    assert deferred.drain.call(enqueued_at=clock.time() - 60)["applied"] == 0
    assert deferred.drain.call()["applied"] == 0  # a successor or a manual run: no wait either
    assert clock.now == 0  # neither slept
