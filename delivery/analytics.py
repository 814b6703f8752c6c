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
  *overdue*: still waiting :data:`RECEIPT_HORIZON` after it was sent (a receipt that late
  will not come: Twilio says to ask its API after 12 hours);
- *delivery rate* = delivered ÷ (finished + overdue): a carrier that drops messages without a
  word lowers it; messages sent less than 12 hours ago and still waiting are counted apart;
- a group whose messages were sent but none ever got a receipt (neither delivered nor a
  carrier's "undelivered") has its rate marked *not reported*: some carriers never send
  handset receipts, and a 0 % there would be false.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connections, router, transaction
from django.db.models import Case, Count, Sum, Value, When
from django.db.models.functions import TruncHour
from django.utils import timezone

from .lifecycle import FAILURE_STATUSES, PENDING_STATUSES, Status
from .masking import mask_phone
from .models import DeliveryLatency, DeliveryRollup, Message
from .recipients import to_e164

DELIVERED = frozenset({Status.DELIVERED, Status.READ})
#: A message still waiting this long after it was sent counts as not delivered.
RECEIPT_HORIZON = timedelta(hours=12)
#: Upper bounds (seconds) of the receipt-time histogram's buckets; the last is open-ended.
LATENCY_BOUNDS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
#: Dimensions the page breaks the figures down by: name -> rollup column.
DIMENSIONS = {
    "country": "country",
    "provider": "provider",
    "sender": "sender_identity",
    "template": "template_key",
}


def shown(dimension: str, key: str) -> str:
    """A group's name as the page and the alerts show it: a sender that is a phone number is
    masked like every number the console shows (no number anywhere on the page)."""
    if dimension == "sender" and key and to_e164(key.rpartition(":")[2]):
        return mask_phone(key)
    return key


# -- the rollups ------------------------------------------------------------------------------


def rebuild(start: datetime, end: datetime, progress: Callable[[int], None] | None = None) -> int:
    """Replace the rollups' hours from ``start`` to ``end`` (UTC hours) with counts of the
    messages as they are now; one short transaction per day. How many messages were counted."""
    hour = hour_of(start)
    counted = 0
    while hour < end:
        day_end = min(hour + timedelta(days=1), hour_of(end) + timedelta(hours=1))
        counted += _rebuild_span(hour, day_end)
        if progress:
            progress(counted)
        hour = day_end
    return counted


def _rebuild_span(start: datetime, end: datetime) -> int:
    """Replace the rollups' hours in ``[start, end)``; read and written in one transaction
    (its server-side cursor then works behind PgBouncer in transaction mode too)."""
    using = router.db_for_write(DeliveryRollup)
    messages = Message.objects.using(using).filter(created_at__gte=start, created_at__lt=end)
    with transaction.atomic(using=using):
        _serialize_rebuilds(using)
        groups = (
            messages.annotate(hour=TruncHour("created_at", tzinfo=UTC))
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
            latencies[hour_of(created), provider, bucket] += 1
        DeliveryRollup.objects.using(using).filter(hour__gte=start, hour__lt=end).delete()
        DeliveryLatency.objects.using(using).filter(hour__gte=start, hour__lt=end).delete()
        DeliveryRollup.objects.using(using).bulk_create(rows, batch_size=2000)
        DeliveryLatency.objects.using(using).bulk_create(
            [
                DeliveryLatency(hour=h, provider=p, bucket=b, messages=n)
                for (h, p, b), n in latencies.items()
            ],
            batch_size=2000,
        )
    return sum(row.messages for row in rows)


#: The PostgreSQL advisory lock two rebuilds take in turn: run at the same time (cron's rollup
#: and the alert command's), each would delete rows the other has not committed yet and both
#: sets would stay.
_REBUILD_LOCK = 0x5D_5E_11_07


def _serialize_rebuilds(using: str) -> None:
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_REBUILD_LOCK])
    # SQLite: the DELETE takes the database's write lock, which serializes them already.


def latency_bucket(seconds: float) -> int:
    """The histogram bucket of a receipt time (a negative one, clocks apart, counts as 0)."""
    return bisect.bisect_left(LATENCY_BOUNDS, max(seconds, 0))


def hour_of(moment: datetime) -> datetime:
    """The start of ``moment``'s hour: the rollup's unit."""
    return moment.replace(minute=0, second=0, microsecond=0)


# -- the figures ------------------------------------------------------------------------------


@dataclass
class Figures:
    """What happened to the messages of one group (or of all) in one window."""

    total: int = 0
    delivered: int = 0
    failed: int = 0
    waiting: int = 0  #: accepted, sent or unknown: no final status yet
    overdue: int = 0  #: of those, sent over RECEIPT_HORIZON ago
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
        """Delivered ÷ (finished + overdue); None when there are none or receipts are not
        reported."""
        if not (self.finished + self.overdue) or not self.receipts_reported:
            return None
        return self.delivered / (self.finished + self.overdue)

    @property
    def judged(self) -> int:
        """The messages the rate is over."""
        return self.finished + self.overdue

    def add(self, status: str, category: str, n: int, old: bool = False) -> None:
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
            if old:
                self.overdue += n
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
    start = hour_of(start)  # the rollup counts whole hours: both windows start on one
    before_start = start - (end - start)
    now_rows = rows(start, end, now=end)
    before_rows = rows(before_start, start, now=end)
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


def rows(start: datetime, end: datetime, now: datetime | None = None) -> list[dict]:
    """The rollup's rows of the window, summed over the hours (few: one per combination), with
    ``old``: sent over RECEIPT_HORIZON before ``now``."""
    cutoff = (now or timezone.now()) - RECEIPT_HORIZON
    old = Case(When(hour__lt=cutoff, then=Value(True)), default=Value(False))
    return list(
        DeliveryRollup.objects.filter(hour__gte=start, hour__lt=end)
        .annotate(old=old)
        .values(*DIMENSIONS.values(), "status", "error_category", "old")
        .annotate(n=Sum("messages"))
        .order_by()
    )


def _figures(summed: Iterable[dict]) -> Figures:
    figures = Figures()
    for row in summed:
        figures.add(row["status"], row["error_category"], row["n"], row["old"])
    return figures


def grouped(summed: Iterable[dict], column: str) -> dict[str, Figures]:
    """The figures of each value of ``column`` in rows of :func:`rows`."""
    groups: dict[str, Figures] = defaultdict(Figures)
    for row in summed:
        groups[row[column] or "—"].add(row["status"], row["error_category"], row["n"], row["old"])
    return groups


def _percentiles(start: datetime, end: datetime) -> tuple[float | None, float | None]:
    counts = dict(
        DeliveryLatency.objects.filter(hour__gte=start, hour__lt=end)
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
