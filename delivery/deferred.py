"""Deferred processing: answer as soon as the request is stored, apply it in a task.

With ``SMS_DELIVERY["PROCESSING"] = "deferred"`` the status webhook verifies the signature,
stores the raw request in one ``INSERT`` (``RawWebhook.pending``) and answers; :func:`process`,
a task of Django's task framework (``django.tasks`` on Django >= 6.0, the ``django-tasks``
backport on 5.2), reads it with the current adapter and applies it through the same
:func:`~delivery.ingest.ingest` as the synchronous path. Any backend runs it: the database
backend (``django-tasks-db``) on one machine, a broker-backed one beyond; none is required by
the app.

Why the guarantees hold when tasks run twice, concurrently and out of order:

- a task locks its raw request (``SELECT … FOR UPDATE``) and does nothing unless it is still
  pending, in the transaction that applies it and clears the flag: a request is applied once,
  however many tasks run for it;
- the summary rule is order-independent (the highest-ranked report wins whatever came first)
  and each message row is locked while its summary changes, as for callbacks;
- dedupe keys make a redelivered report (the provider's retry, stored as its own request) a
  counted duplicate, as on the synchronous path.

A task that was never enqueued (the backend was down) or was lost leaves its request pending:
:func:`sweep` (``manage.py sms_delivery_process_pending``, or the :func:`sweep_task` task)
applies what has waited too long. Settings that cannot read a request (a missing key, an SDK)
leave it pending until they are fixed, as the synchronous path answers 503. Inbound messages
(opt-outs) are always applied before the answer (the view reads a request first where they can
arrive on the status URL, as Telnyx's do): an opt-out must not wait for a worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial

from django.db import DatabaseError, router, transaction
from django.utils import timezone

from .exceptions import ConfigurationError, MalformedPayload
from .ingest import RawRequest, ingest
from .masking import mask_text
from .models import RawWebhook
from .stored import Unopenable, open_stored

try:  # Django >= 6.0
    from django.tasks import task
except ImportError:  # Django 5.2 with the backport
    from django_tasks import task  # type: ignore[no-redef]

logger = logging.getLogger("delivery.deferred")

#: A pending request older than this is the sweeper's: its task was lost or never enqueued.
SWEEP_AFTER = timedelta(minutes=5)


class Outcome:
    APPLIED = "applied"
    UNREADABLE = "unreadable"  #: kept in the review queue
    DONE_ALREADY = "done already"


def accept(raw: RawRequest) -> RawWebhook:
    """Store ``raw`` as pending (one INSERT, committed on its own) and enqueue its task.

    A task that cannot be enqueued is logged, not raised: the request is stored, so the
    provider gets its 2xx, and the sweeper applies it later. Called inside a transaction, the
    task is enqueued once it commits (a worker must find the request).
    """
    from . import statements

    using = router.db_for_write(RawWebhook)
    record = raw.record()
    record.pending = True
    statements.insert(record, using)
    transaction.on_commit(partial(_enqueue, record.pk), using=using)
    return record


def _enqueue(raw_id: int) -> None:
    try:
        process.enqueue(raw_id)
    except Exception as exc:  # noqa: BLE001 - any backend's failure; the sweeper recovers it
        logger.warning(
            "raw request %s stored, its task not enqueued (%s); the sweeper will apply it",
            raw_id,
            type(exc).__name__,
        )


def apply(raw_id: int) -> str:
    """Read and apply the pending raw request ``raw_id``, once; what happened."""
    using = router.db_for_write(RawWebhook)
    with transaction.atomic(using=using):
        raw = RawWebhook.objects.using(using).select_for_update().filter(pk=raw_id).first()
        if raw is None or not raw.pending:
            return Outcome.DONE_ALREADY
        raw.pending = False
        try:
            ingest(open_stored(raw).parse(), stored=raw)
            outcome = Outcome.APPLIED
        except (MalformedPayload, Unopenable) as exc:
            raw.parse_error = mask_text(str(getattr(exc, "detail", exc)))
            outcome = Outcome.UNREADABLE
        except (DatabaseError, ConfigurationError):
            # An outage, or settings that cannot handle it (as the synchronous path's 503):
            # still pending once rolled back, for a retry or the sweeper once fixed.
            raise
        except Exception as exc:  # noqa: BLE001 - as in the webhook view: unreadable, kept
            logger.exception("raw request %s could not be read", raw_id)
            raw.parse_error = f"Unreadable request ({type(exc).__name__})."
            outcome = Outcome.UNREADABLE
        raw.save(using=using, update_fields=["pending", "parse_error"])
    return outcome


@task()
def process(raw_id: int) -> str:
    """The task: apply one stored request (see :func:`apply`)."""
    return apply(raw_id)


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
    counts = {Outcome.APPLIED: 0, Outcome.UNREADABLE: 0, Outcome.DONE_ALREADY: 0}
    for done, raw_id in enumerate(_ids(waiting(older_than), limit), start=1):
        counts[apply(raw_id)] += 1
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
