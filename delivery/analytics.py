"""Delivery analytics: rates, failure reasons and receipt times by country, provider, sender and
template, over a window and against the one before it.

Counting a million messages on every page view is too slow for the console, so the figures
come from two rollups rebuilt from the messages (:func:`rebuild`, ``manage.py
sms_delivery_rollup``): messages by the hour they were created and the status they have now
(:class:`~delivery.models.DeliveryRollup`), and delivered messages by how long their receipt
took (:class:`~delivery.models.DeliveryLatency`). A rebuild replaces whole hours from the
messages as they are, so replay, reconciliation and purge (which blanks personal data, never a
status) are reflected by the next rebuild of those hours; nothing is added to the webhook path.

Definitions (also on the page):

- *finished*: a message with a final status; *delivered*: ``delivered`` or ``read``;
- *delivery rate* = delivered ÷ finished; messages still waiting are counted apart;
- a group whose messages were sent but none ever got a receipt (neither delivered nor a
  carrier's "undelivered") has its rate marked *not reported*: some carriers never send
  handset receipts, and a 0 % there would be false.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import router, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from .lifecycle import FAILURE_STATUSES, PENDING_STATUSES, Status
from .models import DeliveryLatency, DeliveryRollup, Message

DELIVERED = frozenset({Status.DELIVERED, Status.READ})
#: Upper bounds (seconds) of the receipt-time histogram's buckets; the last is open-ended.
LATENCY_BOUNDS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
#: Dimensions the page breaks the figures down by: name -> rollup column.
DIMENSIONS = {
    "country": "country",
    "provider": "provider",
    "sender": "sender_identity",
    "template": "template_key",
}


# -- the rollups ------------------------------------------------------------------------------


def rebuild(start: datetime, end: datetime, progress: Callable[[int], None] | None = None) -> int:
    """Replace the rollups' hours from ``start`` to ``end`` (UTC hours) with counts of the
    messages as they are now; one short transaction per day. How many messages were counted."""
    hour = _hour(start)
    counted = 0
    while hour < end:
        day_end = min(hour + timedelta(days=1), _hour(end) + timedelta(hours=1))
        counted += _rebuild_span(hour, day_end)
        if progress:
            progress(counted)
        hour = day_end
    return counted


def _rebuild_span(start: datetime, end: datetime) -> int:
    messages = Message.objects.filter(created_at__gte=start, created_at__lt=end)
    groups = (
        messages.annotate(hour=TruncHour("created_at"))
        .values(
            "hour",
            "provider",
            "destination_country",
            "sender_identity",
            "template_key",
            "current_status",
            "error_category",
        )
        .annotate(n=Count("id"))
        .order_by()
    )
    rows = [
        DeliveryRollup(
            hour=g["hour"],
            provider=g["provider"],
            country=g["destination_country"],
            sender_identity=g["sender_identity"],
            template_key=g["template_key"],
            status=g["current_status"],
            error_category=g["error_category"],
            messages=g["n"],
        )
        for g in groups
    ]
    latencies: dict[tuple[datetime, str, int], int] = defaultdict(int)
    delivered = messages.filter(
        current_status__in=DELIVERED, delivered_at__isnull=False, first_sent_at__isnull=False
    ).values_list("created_at", "provider", "first_sent_at", "delivered_at")
    for created, provider, sent, arrived in delivered.iterator(chunk_size=5000):
        bucket = latency_bucket((arrived - sent).total_seconds() if arrived and sent else 0)
        latencies[_hour(created), provider, bucket] += 1
    using = router.db_for_write(DeliveryRollup)
    with transaction.atomic(using=using):
        DeliveryRollup.objects.filter(hour__gte=start, hour__lt=end).delete()
        DeliveryLatency.objects.filter(hour__gte=start, hour__lt=end).delete()
        DeliveryRollup.objects.bulk_create(rows, batch_size=2000)
        DeliveryLatency.objects.bulk_create(
            [
                DeliveryLatency(hour=h, provider=p, bucket=b, messages=n)
                for (h, p, b), n in latencies.items()
            ],
            batch_size=2000,
        )
    return sum(row.messages for row in rows)


def latency_bucket(seconds: float) -> int:
    """The histogram bucket of a receipt time (a negative one, clocks apart, counts as 0)."""
    return bisect.bisect_left(LATENCY_BOUNDS, max(seconds, 0))


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


# -- the figures ------------------------------------------------------------------------------


@dataclass
class Figures:
    """What happened to the messages of one group (or of all) in one window."""

    total: int = 0
    delivered: int = 0
    failed: int = 0
    waiting: int = 0  #: accepted, sent or unknown: no final status yet
    sent_without_receipt: int = 0  #: finished or not, sent and never given a receipt
    #: carrier receipts saying "not delivered" (undelivered): a receipt, but a failure
    undelivered: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  #: error category -> failed messages

    @property
    def finished(self) -> int:
        return self.delivered + self.failed

    @property
    def receipts_reported(self) -> bool:
        """False when messages went out but no receipt ever came (see the module's doc)."""
        return bool(self.delivered or self.undelivered or not self.sent_without_receipt)

    @property
    def rate(self) -> float | None:
        """Delivered ÷ finished; None when nothing finished or receipts are not reported."""
        if not self.finished or not self.receipts_reported:
            return None
        return self.delivered / self.finished

    def add(self, status: str, category: str, n: int) -> None:
        self.total += n
        if status in DELIVERED:
            self.delivered += n
        elif status in FAILURE_STATUSES:
            self.failed += n
            self.reasons[category or "none"] = self.reasons.get(category or "none", 0) + n
            if status == Status.UNDELIVERED:
                self.undelivered += n
        elif status in PENDING_STATUSES:
            self.waiting += n
        if status == Status.SENT:
            self.sent_without_receipt += n


@dataclass
class Row:
    """One group of a breakdown, this window and the one before."""

    key: str
    now: Figures
    before: Figures

    @property
    def change(self) -> float | None:
        """Points of delivery rate gained (negative: lost) since the previous window."""
        if self.now.rate is None or self.before.rate is None:
            return None
        return (self.now.rate - self.before.rate) * 100


@dataclass
class Report:
    start: datetime
    end: datetime
    total: Row
    breakdowns: dict[str, list[Row]]  #: dimension -> rows, most messages first
    latency_p50: float | None  #: seconds from sent to delivered (histogram estimate)
    latency_p95: float | None
    latency_before_p50: float | None
    latency_before_p95: float | None
    rebuilt_through: datetime | None  #: the newest hour of the rollup


def report(start: datetime, end: datetime, *, top: int = 12) -> Report:
    """The figures of the window ``[start, end)`` and of the window of the same length before."""
    before_start = start - (end - start)
    now_rows = rows(start, end)
    before_rows = rows(before_start, start)
    total = Row("all", _figures(now_rows), _figures(before_rows))
    breakdowns = {}
    for name, column in DIMENSIONS.items():
        now = grouped(now_rows, column)
        before = grouped(before_rows, column)
        keys = sorted(now, key=lambda k: -now[k].total)[:top]
        breakdowns[name] = [Row(k, now[k], before.get(k, Figures())) for k in keys]
    p50, p95 = _percentiles(start, end)
    before_p50, before_p95 = _percentiles(before_start, start)
    newest = DeliveryRollup.objects.order_by("-hour").values_list("hour", flat=True).first()
    return Report(start, end, total, breakdowns, p50, p95, before_p50, before_p95, newest)


def rows(start: datetime, end: datetime) -> list[dict]:
    """The rollup's rows of the window, summed over the hours (few: one per combination)."""
    return list(
        DeliveryRollup.objects.filter(hour__gte=_hour(start), hour__lt=end)
        .values(*DIMENSIONS.values(), "status", "error_category")
        .annotate(n=Sum("messages"))
        .order_by()
    )


def _figures(summed: Iterable[dict]) -> Figures:
    figures = Figures()
    for row in summed:
        figures.add(row["status"], row["error_category"], row["n"])
    return figures


def grouped(summed: Iterable[dict], column: str) -> dict[str, Figures]:
    """The figures of each value of ``column`` in rows of :func:`rows`."""
    groups: dict[str, Figures] = defaultdict(Figures)
    for row in summed:
        groups[row[column] or "—"].add(row["status"], row["error_category"], row["n"])
    return groups


def _percentiles(start: datetime, end: datetime) -> tuple[float | None, float | None]:
    counts = dict(
        DeliveryLatency.objects.filter(hour__gte=_hour(start), hour__lt=end)
        .values_list("bucket")
        .annotate(n=Sum("messages"))
        .order_by()
    )
    return histogram_quantile(counts, 0.5), histogram_quantile(counts, 0.95)


def histogram_quantile(counts: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile of a receipt-time histogram, interpolated within its bucket (the
    open-ended last bucket answers its lower bound)."""
    total = sum(counts.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for bucket in sorted(counts):
        n = counts[bucket]
        if seen + n >= rank:
            low = LATENCY_BOUNDS[bucket - 1] if bucket else 0
            if bucket >= len(LATENCY_BOUNDS):
                return float(low)
            high = LATENCY_BOUNDS[bucket]
            return low + (high - low) * ((rank - seen) / n)
        seen += n
    return float(LATENCY_BOUNDS[-1])


def window(name: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``"24h"``, ``"7d"`` or ``"30d"`` ending now (ValueError otherwise)."""
    now = now or timezone.now()
    lengths = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
    return now - lengths[name], now
