"""Deferred processing: answer as soon as the request is stored, apply it in a task.

With ``SMS_DELIVERY["PROCESSING"] = "deferred"`` the status webhook verifies the signature,
stores the raw request in one ``INSERT`` (``RawWebhook.pending``) and answers; :func:`drain`,
a task of Django's task framework (``django.tasks`` on Django >= 6.0, the ``django-tasks``
backport on 5.2), reads what is pending with the current adapter and applies it through the same
:func:`~delivery.ingest.ingest` as the synchronous path. Any backend runs it: the database
backend (``django-tasks-db``) on one machine, a broker-backed one beyond; none is required by
the app.

A task per request would cost each request an enqueue (with the database backend, a row and its
bookkeeping: about as much as the request itself). Instead a process enqueues a drain at most
once every :data:`ENQUEUE_EVERY` seconds, and a drain applies every pending request it can lock,
then keeps looking until :data:`LOOK_FOR` seconds after it started (its own monotonic clock). A
request whose process skipped the enqueue was committed less than :data:`ENQUEUE_EVERY` after
that process's last enqueue, and the drain it enqueued started after the enqueue, so it is still
looking when that request commits. A drain that starts late (the queue was backed up) found
every such request already committed and stops as soon as nothing is left, so idle drains do
not pile up (see :data:`STALE_AFTER` for what clocks must agree on). Under load the drains
started by every process overlap and share the work. A fresh drain holds a task worker for at
least :data:`LOOK_FOR` seconds: give the backend at least as many worker slots as there are
web processes, or drains queue behind each other (they are not lost; they start later).

Why the guarantees hold when drains run concurrently, twice and out of order:

- a drain takes up to :data:`BATCH` pending requests with ``SELECT … FOR UPDATE SKIP LOCKED``
  (one that another drain holds is skipped, not waited for) and applies them in the
  transaction that clears their flags, each in a savepoint of its own (one that cannot be
  read is kept for review, the others applied): a request is applied once, however many
  drains and sweepers run;
- a batch locks its messages in one order, (provider, message id), as the reports of one
  request do, so two drains never wait for each other in a circle (see :func:`_apply_next`);
- the summary rule is order-independent (the highest-ranked report wins whatever came first)
  and each message row is locked while its summary changes, as for callbacks;
- dedupe keys make a redelivered report (the provider's retry, stored as its own request) a
  counted duplicate, as on the synchronous path.

A drain that was never enqueued (the backend was down) or was lost leaves requests pending:
:func:`sweep`
(``manage.py sms_delivery_process_pending``, or the :func:`sweep_task` task) applies what has
waited too long. Settings that cannot read a request (a missing key, an SDK) leave it pending
until they are fixed, as the synchronous path answers 503. Inbound messages (opt-outs) are
always applied before the answer (the view reads a request first where they can arrive on the
status URL, as Telnyx's do): an opt-out must not wait for a worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from datetime import timedelta
from functools import partial

from django.db import DatabaseError, router, transaction
from django.utils import timezone

from . import statements, storable
from .events import Event, NormalizedEvent
from .exceptions import ConfigurationError, MalformedPayload
from .ingest import RawRequest, ingest, lock_order
from .lifecycle import ErrorCategory
from .masking import mask_text
from .models import RawWebhook
from .stored import Unopenable, open_stored

try:  # Django >= 6.0
    from django.tasks import task
except ImportError:  # Django 5.2 with the backport
    from django_tasks import task  # type: ignore[no-redef]

logger = logging.getLogger("delivery.deferred")

#: A process enqueues a drain at most this often (seconds).
ENQUEUE_EVERY = 1.0
#: A drain keeps looking for requests until this long after it started, by its own monotonic
#: clock (seconds). It started after its enqueue, so it looks until after every request its
#: process committed without enqueuing (within ENQUEUE_EVERY of that enqueue): no wall clock
#: of two machines is ever compared.
LOOK_FOR = ENQUEUE_EVERY + 0.2
#: A drain that starts this long after its enqueue (by the two machines' wall clocks) is late:
#: every request it had to cover was committed before it started, so it does not wait for
#: more. Only a worker clock more than STALE_AFTER - LOOK_FOR seconds ahead of the web
#: server's could make it stop too early (the next drain or the sweeper then applies what it
#: left).
STALE_AFTER = 5.0
#: How often a drain that found nothing looks again before its deadline (seconds).
POLL_EVERY = 0.05
#: A drain that still finds work after this long hands over to a new one (seconds), so no
#: task runs past a backend's time limit (RQ's default is 180 s).
DRAIN_AT_MOST = 60.0
#: A drain applies up to this many pending requests in one transaction (each in a savepoint of
#: its own, in the order their messages are locked): a request then costs its own statements,
#: not a transaction and a query to find it.
BATCH = 50
#: A pending request older than this is the sweeper's: its drain was lost or never enqueued.
SWEEP_AFTER = timedelta(minutes=5)


class Outcome:
    APPLIED = "applied"
    UNREADABLE = "unreadable"  #: kept in the review queue
    DONE_ALREADY = "done already"
    POSTPONED = "waiting for settings"  #: the provider's settings cannot read it yet


def accept(raw: RawRequest) -> int:
    """Store ``raw`` as pending (one INSERT) and, once it commits, wake a drain; its id.

    A drain that cannot be enqueued is logged, not raised: the request is stored, so the
    provider gets its 2xx, and the next request or the sweeper picks it up.
    """
    using = router.db_for_write(RawWebhook)
    columns = {
        **raw.columns(),
        "received_at": timezone.now(),
        "recipient_hash": "",
        "pending": True,
    }
    raw_id = statements.insert_columns(RawWebhook, columns, using)
    transaction.on_commit(partial(_wake, raw_id), using=using)
    return raw_id


class _Throttle:
    """When this process last enqueued a drain. Two threads may both enqueue: harmless."""

    lock = threading.Lock()
    last = float("-inf")


def _wake(raw_id: int) -> None:
    try:
        if type(drain.get_backend()).__name__ == "ImmediateBackend":
            # Tasks run here, in the request: apply this request only, nothing to throttle.
            apply(raw_id)
            return
        now = time.monotonic()
        with _Throttle.lock:
            if now - _Throttle.last < ENQUEUE_EVERY:
                return
            _Throttle.last = now
        drain.enqueue(enqueued_at=time.time())
    except Exception as exc:  # noqa: BLE001 - any backend's failure; the sweeper recovers it
        _Throttle.last = float("-inf")  # the next request tries again
        logger.warning(
            "request stored, its drain not enqueued or run (%s); the next request or the "
            "sweeper will apply it",
            type(exc).__name__,
        )


def apply(raw_id: int) -> str:
    """Read and apply the pending raw request ``raw_id``, once; what happened."""
    using = router.db_for_write(RawWebhook)
    with transaction.atomic(using=using):
        raw = RawWebhook.objects.using(using).select_for_update().filter(pk=raw_id).first()
        if raw is None or not raw.pending:
            return Outcome.DONE_ALREADY
        return _apply_locked(raw, using)


def _apply_locked(raw: RawWebhook, using: str) -> str:
    events, reason = _read(raw)  # a ConfigurationError leaves it pending (rolled back)
    outcome = _apply_read(raw, events, reason)
    _mark_read([raw], using)
    return outcome


def _read(raw: RawWebhook) -> tuple[Sequence[Event], str]:
    """``raw``'s events, or why it cannot be read (kept for review). ConfigurationError (the
    provider's settings cannot read it yet) is raised."""
    try:
        return open_stored(raw).parse(), ""
    except (MalformedPayload, Unopenable) as exc:
        return [], mask_text(str(getattr(exc, "detail", exc)))
    except (ConfigurationError, DatabaseError):
        raise
    except Exception as exc:  # noqa: BLE001 - as in the webhook view: unreadable, kept
        logger.exception("raw request %s could not be read", raw.pk)
        return [], f"Unreadable request ({type(exc).__name__})."


def _apply_read(raw: RawWebhook, events: Sequence[Event], reason: str) -> str:
    """Apply ``raw``'s ``events`` (ingest's own savepoint: a request that fails writes
    nothing); what happened. A database error (an outage) or a ConfigurationError is raised:
    rolled back, the request is still pending for a retry, or the sweeper once fixed."""
    raw.pending = False
    if not reason:
        try:
            ingest(events, stored=raw)
            return Outcome.APPLIED
        except MalformedPayload as exc:
            reason = mask_text(str(exc.detail))
        except (DatabaseError, ConfigurationError):
            raise
        except Exception as exc:  # noqa: BLE001 - as in the webhook view: unreadable, kept
            logger.exception("raw request %s could not be read", raw.pk)
            reason = f"Unreadable request ({type(exc).__name__})."
    raw.parse_error = reason
    return Outcome.UNREADABLE


def _mark_read(read: Sequence[RawWebhook], using: str) -> None:
    """Clear the pending flag of ``read``: one UPDATE for those applied; an unreadable one
    keeps its reason."""
    applied = []
    for raw in read:
        if raw.parse_error:
            raw.save(using=using, update_fields=["pending", "parse_error"])
        else:
            applied.append(raw.pk)
    if applied:
        RawWebhook.objects.using(using).filter(pk__in=applied).update(pending=False)


@task()
def drain(enqueued_at: float | None = None) -> dict[str, int]:
    """The task: apply pending requests until none is left and, for a drain a web process
    enqueued at ``enqueued_at`` (a ``time.time()``) that is not late (:data:`STALE_AFTER`),
    :data:`LOOK_FOR` seconds have passed since it started; counts by outcome.

    A request the provider's settings cannot read passes over that provider's requests for the
    rest of this drain (they wait for the settings, and the sweeper). A database error (an
    outage, SQLite's lock) is logged and looked past like an empty poll, so the drain still
    looks until its deadline.
    """
    counts = {Outcome.APPLIED: 0, Outcome.UNREADABLE: 0, Outcome.POSTPONED: 0}
    passed_over: set[str] = set()
    started = time.monotonic()
    fresh = enqueued_at is not None and time.time() - enqueued_at < STALE_AFTER
    idle_until = started + (LOOK_FOR if fresh else 0.0)
    while True:
        try:
            found = _apply_next(passed_over)
        except DatabaseError as exc:
            # An outage while a batch was applied: rolled back, still pending, taken again.
            logger.warning("a drain could not read pending requests (%s)", type(exc).__name__)
            found = []
        now = time.monotonic()
        for outcome in found:
            counts[outcome] += 1
        if found:
            if now - started > DRAIN_AT_MOST:
                drain.enqueue()  # still work to do: a successor takes over
                return counts
        elif now >= idle_until:
            return counts
        else:
            time.sleep(min(POLL_EVERY, idle_until - now))


def _apply_next(passed_over: set[str]) -> list[str]:
    """Apply the oldest pending requests (up to :data:`BATCH`) that no other drain holds, of
    providers not passed over, in one transaction; what happened to each ([] if none).

    A batch holds every lock it takes until it commits, so it takes them in one order: its
    requests are applied in (provider, message id) order, each locking (or creating) one
    message. A request that would lock rows out of that order (one naming several messages,
    or an opt-out, which adds a suppression row of a person) is applied on its own, in a
    transaction of its own, once the batch is committed.
    """
    using = router.db_for_write(RawWebhook)
    outcomes: list[str] = []
    alone: list[tuple[int, str]] = []  # (id, provider)
    with transaction.atomic(using=using):
        taken = (
            RawWebhook.objects.using(using)
            .select_for_update(skip_locked=True)
            .filter(pending=True)
            .exclude(provider__in=passed_over)
            .order_by("received_at")[:BATCH]
        )
        read = []
        for raw in taken:
            if raw.provider in passed_over:
                continue  # another of its requests could not be read: they all wait
            try:
                events, reason = _read(raw)
            except ConfigurationError as exc:
                passed_over.add(raw.provider)
                outcomes.append(_postponed(raw.pk, exc))
                continue
            keys = _message_keys(events)
            if len(keys) > 1 or any(_is_opt_out(event) for event in events):
                alone.append((raw.pk, raw.provider))
            else:
                read.append((keys[0] if keys else ("", ""), raw, events, reason))
        read.sort(key=lambda item: item[0])
        done = []
        for _, raw, events, reason in read:
            if raw.provider in passed_over:
                continue
            try:
                outcomes.append(_apply_read(raw, events, reason))
            except ConfigurationError as exc:  # ingest rolled its savepoint back
                passed_over.add(raw.provider)
                outcomes.append(_postponed(raw.pk, exc))
            else:
                done.append(raw)
        _mark_read(done, using)
    for raw_id, provider in alone:
        if provider in passed_over:
            continue
        try:
            outcome = apply(raw_id)
        except ConfigurationError as exc:
            passed_over.add(provider)
            outcome = _postponed(raw_id, exc)
        except DatabaseError as exc:  # the batch is committed: still pending, taken again
            logger.warning("raw request %s could not be applied (%s)", raw_id, type(exc).__name__)
            continue
        if outcome != Outcome.DONE_ALREADY:  # another drain or the sweeper took it meanwhile
            outcomes.append(outcome)
    return outcomes


def _message_keys(events: Sequence[Event]) -> list[tuple[str, str]]:
    """The messages a request's reports lock, named as ingest names them (fitted), in order."""
    keys = set()
    for event in events:
        if isinstance(event, NormalizedEvent):
            with suppress(MalformedPayload):  # unreadable: ingest refuses it, locking nothing
                event = storable.event(event)
            keys.add(lock_order(event))
    return sorted(keys)


def _is_opt_out(event: Event) -> bool:
    return isinstance(event, NormalizedEvent) and event.error_category == ErrorCategory.OPT_OUT


def _postponed(raw_id: int, exc: ConfigurationError) -> str:
    logger.warning("raw request %s waits for settings that can read it: %s", raw_id, exc)
    return Outcome.POSTPONED


def waiting(older_than: timedelta = SWEEP_AFTER):
    """Pending requests received more than ``older_than`` ago, oldest first."""
    return RawWebhook.objects.filter(
        pending=True, received_at__lt=timezone.now() - older_than
    ).order_by("received_at", "pk")


def sweep(
    older_than: timedelta = SWEEP_AFTER,
    *,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Apply the requests that waited longer than ``older_than``; counts by outcome."""
    counts = dict.fromkeys(
        (Outcome.APPLIED, Outcome.UNREADABLE, Outcome.DONE_ALREADY, Outcome.POSTPONED), 0
    )
    for done, raw_id in enumerate(_ids(waiting(older_than), limit), start=1):
        try:
            counts[apply(raw_id)] += 1
        except ConfigurationError as exc:
            counts[_postponed(raw_id, exc)] += 1
        if progress:
            progress(done)
    return counts


def _ids(pending, limit: int | None, batch: int = 500) -> Iterator[int]:
    """Ids of ``pending``, a batch at a time (each applied one is no longer pending)."""
    seen = 0
    after = 0
    while limit is None or seen < limit:
        ids = list(pending.filter(pk__gt=after).order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return
        for raw_id in ids:
            if limit is not None and seen >= limit:
                return
            seen += 1
            yield raw_id
        after = ids[-1]


@task()
def sweep_task() -> dict[str, int]:
    """The sweeper as a task, for a task scheduler."""
    return sweep()
