"""Retention: blank personal data older than ``SMS_DELIVERY["RETENTION"]`` says (``sms_delivery_purge``).

What goes is the clear text a person could be found by: the raw requests as received, the
providers' payloads of events, the encrypted recipient and sender numbers. What stays keeps the
records useful: statuses, timelines, error codes, keyed hashes (a number typed into the search
still finds its messages), countries. Rows are blanked, not deleted, so no foreign key has to
be rewritten and the timeline keeps every event.

The work goes in batches along the time index, each batch one short transaction (an
``UPDATE … WHERE id IN (…)``): no long lock, and an interrupted purge resumes by being run
again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import router, transaction
from django.db.models import Model, Q
from django.utils import timezone

from .models import InboundMessage, Message, MessageEvent, RawWebhook


@dataclass(frozen=True)
class Target:
    """One kind of personal data: where it is, how old it is, what blanks it."""

    setting: str  #: the RETENTION key that sets its age
    label: str
    model: type[Model]
    time_field: str
    column: str  #: the column that holds it; blanked to ""


TARGETS = (
    Target("RAW_REQUESTS_DAYS", "raw requests", RawWebhook, "received_at", "request_encrypted"),
    Target(
        "EVENT_PAYLOADS_DAYS", "event payloads", MessageEvent, "received_at", "payload_encrypted"
    ),
    Target("RECIPIENTS_DAYS", "recipient numbers", Message, "created_at", "recipient_encrypted"),
    Target("RECIPIENTS_DAYS", "sender numbers", InboundMessage, "received_at", "sender_encrypted"),
)


def due(target: Target, cutoff: datetime):
    """The rows of ``target`` older than ``cutoff`` that still hold the data."""
    return target.model._default_manager.filter(**{f"{target.time_field}__lt": cutoff}).exclude(
        **{target.column: ""}
    )


def cutoff_for(days: int | None, now: datetime | None = None) -> datetime | None:
    return (now or timezone.now()) - timedelta(days=days) if days else None


def purge(
    target: Target,
    cutoff: datetime,
    *,
    batch_size: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Blank ``target`` in the rows older than ``cutoff``; how many rows were blanked."""
    done = 0
    using = router.db_for_write(target.model)
    for ids in _batches(target, cutoff, batch_size):
        with transaction.atomic(using=using):
            done += target.model._default_manager.filter(pk__in=ids).update(**{target.column: ""})
        if progress:
            progress(done)
    return done


def _batches(target: Target, cutoff: datetime, size: int) -> Iterator[list[int]]:
    """Ids of due rows, ``size`` at a time, in (time, id) order: each batch starts where the
    last ended, on the time index, so no batch rereads what an earlier one blanked."""
    after: tuple[datetime, int] | None = None
    time_field = target.time_field
    while True:
        rows = due(target, cutoff)
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
