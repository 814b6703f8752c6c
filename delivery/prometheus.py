"""``/webhooks/metrics``: the delivery figures in Prometheus' text format, for the monitoring a
team already runs. Opt-in: it exists only when ``SMS_DELIVERY["METRICS_TOKEN"]`` is set, and
answers only ``Authorization: Bearer <token>``. Needs ``prometheus-client`` (the ``metrics``
extra).

Every value is read when scraped (gauges, no state kept in the web process, so any number of
workers report the same figures): webhook refusals and duplicates counted in Django's cache this
clock hour and the one before, messages by status over the last 24 hours (from the analytics
rollup), the review queue, stored requests waiting for their task, report lag and open alerts.
Labels are provider names, statuses and reasons: never a number or a message id.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from . import health
from .adapters import secret_list
from .conf import app_settings
from .lifecycle import Status
from .metrics import counted
from .models import Alert, DeliveryRollup

#: What the webhook counts in the cache, by reason (delivery.metrics).
COUNTED = (
    "signature_invalid",
    "malformed_payload",
    "payload_too_large",
    "storage_unavailable",
    "misconfigured",
    "duplicate",
)


@login_not_required  # its own bearer token
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    tokens = metrics_tokens()
    if not tokens:
        return HttpResponse(status=404)  # whatever the method: off is as if it did not exist
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not any(
        hmac.compare_digest(given.strip().encode(), token.encode()) for token in tokens
    ):
        return HttpResponse(status=401, headers={"WWW-Authenticate": "Bearer"})
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeliveryCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def metrics_tokens() -> list[str]:
    """``METRICS_TOKEN``: one token, a comma-separated string or a list (rotation)."""
    return secret_list(app_settings.METRICS_TOKEN or [])


class DeliveryCollector:
    """Builds the metric families at scrape time."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        now = timezone.now()
        report = health.report()
        webhooks = GaugeMetricFamily(
            "sms_delivery_webhook_problems",
            "Webhook requests refused or failed, and duplicate reports, this clock hour and "
            "the one before.",
            labels=["provider", "reason"],
        )
        requests = GaugeMetricFamily(
            "sms_delivery_webhook_requests",
            "Requests stored since the start of the previous clock hour (capped).",
            labels=["provider"],
        )
        lag = GaugeMetricFamily(
            "sms_delivery_report_lag_seconds_p95",
            "Seconds between a report's own time and its receipt, p95 of the latest reports.",
            labels=["provider"],
        )
        for provider in report.providers:
            for reason in COUNTED:
                webhooks.add_metric([provider.name, reason], counted(reason, provider.name, now))
            requests.add_metric([provider.name], provider.requests_recent)
            if provider.lag_seconds_p95 is not None:
                lag.add_metric([provider.name], provider.lag_seconds_p95)
        statuses = GaugeMetricFamily(
            "sms_delivery_messages_24h",
            "Messages created in the last 24 hours by provider and current status (rollup).",
            labels=["provider", "status"],
        )
        rows = (
            DeliveryRollup.objects.filter(hour__gte=now - timedelta(hours=24))
            .values_list("provider", "status")
            .annotate(n=Sum("messages"))
            .order_by()
        )
        for provider_name, status, n in rows:
            statuses.add_metric([provider_name, status], n)
        transitions = GaugeMetricFamily(
            "sms_delivery_transitions",
            "Summary transitions into each status, this clock hour and the one before.",
            labels=["provider", "status"],
        )
        for provider in report.providers:
            for status in Status.values:
                n = counted(f"transition_{status}", provider.name, now)
                if n:
                    transitions.add_metric([provider.name, status], n)
        yield from (webhooks, requests, lag, statuses, transitions)
        yield GaugeMetricFamily(
            "sms_delivery_review_queue",
            "Messages in the review queue (an unmapped status), capped.",
            value=report.review_messages,
        )
        yield GaugeMetricFamily(
            "sms_delivery_unreadable_requests",
            "Verified requests kept for review because they could not be read, capped.",
            value=report.review_requests,
        )
        yield GaugeMetricFamily(
            "sms_delivery_waiting_requests",
            "Stored requests waiting for their task for over 5 minutes (deferred processing).",
            value=report.waiting_requests,
        )
        yield GaugeMetricFamily(
            "sms_delivery_open_alerts",
            "Alerts firing now (delivery.alerts).",
            value=Alert.objects.filter(resolved_at=None).count(),
        )
