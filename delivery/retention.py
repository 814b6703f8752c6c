"""Retention: blank personal data older than ``SMS_DELIVERY["RETENTION"]`` says (``sms_delivery_purge``).

What goes is the clear text a person could be found by: the raw requests as received, the
providers' payloads of events, the encrypted recipient and sender numbers. What stays keeps the
records useful: statuses, timelines, error codes, keyed hashes (a number typed into the search
still finds its messages), countries. Rows are blanked, not deleted, so no foreign key has to
be rewritten and the timeline keeps every event.

The work goes in batches along the time index, each batch one short transaction (an
``UPDATE … WHERE id IN (…)``): no long lock, and an interrupted purge resumes by being run
again. A purge that finishes records its cutoff (:class:`~delivery.models.PurgeCheckpoint`);
the next one starts there, so a daily run reads one day's rows, not years of blanked ones.
Rows written later with an older time (an import of old data) are older than the checkpoint:
``from_start=True`` (``sms_delivery_purge --from-start``) walks everything again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import router, transaction
from django.db.models import Model, Q
from django.utils import timezone

from .models import InboundMessage, Message, MessageEvent, PurgeCheckpoint, RawWebhook


@dataclass(frozen=True)
class Target:
    """One kind of personal data: where it is, how old it is, what blanks it."""

    setting: str  #: the RETENTION key that sets its age
    label: str
    model: type[Model]
    time_field: str
    column: str  #: the column that holds it; blanked to ""

    @property
    def key(self) -> str:
        return f"{self.model._meta.label}.{self.column}"


TARGETS = (
    Target("RAW_REQUESTS_DAYS", "raw requests", RawWebhook, "received_at", "request_encrypted"),
    Target(
        "EVENT_PAYLOADS_DAYS", "event payloads", MessageEvent, "received_at", "payload_encrypted"
    ),
    Target("RECIPIENTS_DAYS", "recipient numbers", Message, "created_at", "recipient_encrypted"),
    Target("RECIPIENTS_DAYS", "sender numbers", InboundMessage, "received_at", "sender_encrypted"),
)


def due(target: Target, cutoff: datetime, *, from_start: bool = False):
    """The rows of ``target`` older than ``cutoff`` that still hold the data (from the last
    finished purge's cutoff on, unless ``from_start``)."""
    rows = target.model._default_manager.filter(**{f"{target.time_field}__lt": cutoff})
    since = None if from_start else checkpoint(target)
    if since is not None:
        rows = rows.filter(**{f"{target.time_field}__gte": since})
    rows = rows.exclude(**{target.column: ""})
    if target.model is RawWebhook:
        rows = rows.exclude(pending=True)  # not applied yet: blanking it would lose it
    return rows


def checkpoint(target: Target) -> datetime | None:
    """Before when ``target`` was blanked entirely by a finished purge, if one finished."""
    return (
        PurgeCheckpoint.objects.filter(target=target.key)
        .values_list("blanked_before", flat=True)
        .first()
    )


def cutoff_for(days: int | None, now: datetime | None = None) -> datetime | None:
    return (now or timezone.now()) - timedelta(days=days) if days else None


def purge(
    target: Target,
    cutoff: datetime,
    *,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
    from_start: bool = False,
) -> int:
    """Blank ``target`` in the rows older than ``cutoff``; how many rows were blanked."""
    done = 0
    using = router.db_for_write(target.model)
    for ids in _batches(target, cutoff, batch_size, from_start):
        with transaction.atomic(using=using):
            done += target.model._default_manager.filter(pk__in=ids).update(**{target.column: ""})
        if progress:
            progress(done)
    reached = cutoff
    if target.model is RawWebhook:
        # Never past a request still waiting for its task (deferred processing): it was
        # skipped, and must be found by a later purge once it is read.
        waiting = (
            RawWebhook.objects.filter(pending=True, received_at__lt=cutoff)
            .order_by("received_at")
            .values_list("received_at", flat=True)
            .first()
        )
        reached = waiting or cutoff
    previous = checkpoint(target)
    # A longer retention (an earlier cutoff) leaves it: what is before it stays blanked.
    if previous is None or reached > previous:
        PurgeCheckpoint.objects.update_or_create(
            target=target.key, defaults={"blanked_before": reached}
        )
    return done


def _batches(target: Target, cutoff: datetime, size: int, from_start: bool) -> Iterator[list[int]]:
    """Ids of due rows, ``size`` at a time, in (time, id) order: each batch starts where the
    last ended, on the time index, so no batch rereads what an earlier one blanked."""
    after: tuple[datetime, int] | None = None
    time_field = target.time_field
    every = due(target, cutoff, from_start=from_start)
    while True:
        rows = every
        if after is not None:
            when, pk = after
            # The first condition alone is what the index can start from; without it PostgreSQL
            # reads every row before ``when`` again on each batch.
            rows = rows.filter(**{f"{time_field}__gte": when}).filter(
                Q(**{f"{time_field}__gt": when}) | Q(**{time_field: when, "pk__gt": pk})
            )
        page = list(rows.order_by(time_field, "pk").values_list(time_field, "pk")[:size])
        if not page:
            return
        after = page[-1]
        yield [pk for _, pk in page]
