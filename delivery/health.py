"""Is delivery tracking working? For load balancers (``/webhooks/health/``) and for people and
cron (``manage.py sms_delivery_health``).

The endpoint only asks whether the database answers: it needs no login, names no one, writes
nothing and answers in milliseconds. The report reads a few indexed rows per provider: when
each last called, how late reports arrive (our receipt time minus the provider's), the review
queue, messages stuck before a final status (among those of the last week: a carrier that never
sends handset receipts would otherwise make the count grow for ever), and the share of requests
refused for their signature since the start of the previous clock hour (refusals are counted per
clock hour in the cache, so only a shared cache shows other processes' refusals).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.db import DatabaseError, connections, router
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from .conf import app_settings
from .events import EventSource
from .lifecycle import PENDING_STATUSES
from .metrics import counter_key
from .models import Message, MessageEvent, RawWebhook

#: Counts stop here: a health report must stay cheap at any table size.
COUNT_CAP = 10_000
#: How many of the latest reports (of the last day) the processing lag is computed over.
LAG_SAMPLE = 500
#: A message sent less than this long ago is not yet expected to have a report.
SILENT_GRACE = timedelta(minutes=5)
#: A stored request waiting longer than this for its task (deferred processing) is late.
WAITING_AFTER = timedelta(minutes=5)


def database_reachable() -> bool:
    """One ``SELECT 1`` on the database the delivery records live in."""
    try:
        with connections[router.db_for_read(Message)].cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError:
        return False


@csrf_exempt  # nothing to protect, and a POST is answered 405, not a CSRF page
@login_not_required
@never_cache
@require_safe
def health_view(request: HttpRequest) -> JsonResponse:
    """``GET /webhooks/health/``: 200 ``{"status": "ok"}``, or 503 when the database is down."""
    if database_reachable():
        return JsonResponse({"status": "ok"})
    return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)


@dataclass
class ProviderHealth:
    name: str
    last_request_at: datetime | None
    requests_recent: int  #: since ``Report.counted_since``, capped at COUNT_CAP
    refused_recent: int  #: signature refusals counted in the cache, same window
    lag_seconds_median: float | None  #: our receipt time minus the provider's, latest reports
    lag_seconds_p95: float | None

    @property
    def refused_share(self) -> float:
        total = self.requests_recent + self.refused_recent
        return self.refused_recent / total if total else 0.0


@dataclass
class Report:
    checked_at: datetime
    #: Start of the previous clock hour: requests and refusals are counted since then.
    counted_since: datetime
    providers: list[ProviderHealth] = field(default_factory=list)
    review_messages: int = 0  #: capped at COUNT_CAP
    review_requests: int = 0  #: unreadable requests kept for review, capped
    stuck_messages: int = 0  #: pending for longer than ``stuck_after``, capped
    stuck_after: timedelta = timedelta(hours=12)
    stuck_window: timedelta = timedelta(days=7)  #: only messages this recent are counted
    #: Deferred processing: stored requests still waiting for a task after WAITING_AFTER.
    waiting_requests: int = 0
    #: Providers that were sent messages recently but have not called since.
    silent: list[str] = field(default_factory=list)


def report(
    *,
    stuck_after: timedelta = timedelta(hours=12),
    stuck_window: timedelta = timedelta(days=7),
    silent_after: timedelta = timedelta(hours=1),
) -> Report:
    """The numbers ``sms_delivery_health`` prints and judges; a handful of indexed queries."""
    now = timezone.now()
    since = (now - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    result = Report(
        checked_at=now, counted_since=since, stuck_after=stuck_after, stuck_window=stuck_window
    )
    for name in app_settings.PROVIDERS:
        requests = RawWebhook.objects.filter(provider=name)
        last = requests.order_by("-received_at").values_list("received_at", flat=True).first()
        lags = _lags(name)
        result.providers.append(
            ProviderHealth(
                name=name,
                last_request_at=last,
                requests_recent=_capped(requests.filter(received_at__gte=since)),
                refused_recent=_refused(name, now),
                lag_seconds_median=statistics.median(lags) if lags else None,
                lag_seconds_p95=_p95(lags),
            )
        )
        # Silent: we sent through it within silent_after (and long enough ago for a first
        # report, SILENT_GRACE), and it has not called since.
        first_sent = (
            Message.objects.filter(
                provider=name,
                created_at__gt=now - silent_after,
                created_at__lte=now - SILENT_GRACE,
                registered_at__isnull=False,
            )
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if first_sent and (last is None or last < first_sent):
            result.silent.append(name)
    result.review_messages = _capped(Message.objects.filter(needs_review=True))
    result.review_requests = _capped(RawWebhook.objects.exclude(parse_error=""))
    result.waiting_requests = _capped(
        RawWebhook.objects.filter(pending=True, received_at__lt=now - WAITING_AFTER)
    )
    result.stuck_messages = _capped(
        Message.objects.filter(
            current_status__in=PENDING_STATUSES,
            created_at__lt=now - stuck_after,
            created_at__gte=now - stuck_window,
        )
    )
    return result


def _capped(queryset) -> int:
    return queryset.order_by()[:COUNT_CAP].count()


def _refused(provider: str, now: datetime) -> int:
    """Refusals in this clock hour and the previous one (the cache counts per clock hour)."""
    hours = [now.strftime("%Y%m%d%H"), (now - timedelta(hours=1)).strftime("%Y%m%d%H")]
    keys = [counter_key("signature_invalid", provider, hour) for hour in hours]
    try:
        return sum(cache.get_many(keys).values())
    except Exception:  # noqa: BLE001 - a broken cache is reported as no count, never a crash
        return 0


def _lags(provider: str) -> list[float]:
    """Seconds between the provider's time and our receipt, over its latest reports."""
    since = timezone.now() - timedelta(days=1)
    latest = (
        MessageEvent.objects.filter(
            message__provider=provider,
            provider_occurred_at__isnull=False,
            received_at__gte=since,
            source=EventSource.WEBHOOK,
        )
        .order_by("-received_at")
        .values_list("received_at", "provider_occurred_at")[:LAG_SAMPLE]
    )
    return [(received - occurred).total_seconds() for received, occurred in latest if occurred]


def _p95(values: list[float]) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=20, method="inclusive")[18]
