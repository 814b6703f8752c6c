"""Alert rules, evaluated on a schedule (``manage.py sms_delivery_alerts``), each firing once per
incident and saying when it resolves.

The rules and their defaults (``SMS_DELIVERY["ALERTS"]`` overrides any of them):

- ``rate_drop``: a country's, provider's, sender's or template's delivery rate over the last
  ``RATE_WINDOW_HOURS`` (6) is more than ``RATE_DROP_POINTS`` (10) points under its rate over
  the ``BASELINE_DAYS`` (7) before, with at least ``MIN_FINISHED`` (50) finished messages in
  the window, so three messages never page anyone (read from the rollups: run
  ``sms_delivery_rollup`` first, as the command does);
- ``signature_failures``: over ``SIGNATURE_FAILURES`` (20) refused signatures in the last
  hour or two for a provider (a leaked URL being probed, or a rotated secret);
- ``webhook_failures``: over ``WEBHOOK_FAILURES`` (10) webhooks of a provider answered 503 (a
  storage outage, settings that cannot read them) in the last hour or two: most providers
  retry a 503 a few times at most, so what is not recovered needs reconciliation;
- ``unknown_statuses``: over ``UNKNOWN_STATUSES`` (10) messages put in the review queue by an
  unmapped status in the last hour;
- ``duplicates``: a provider's reports counted as duplicates in the last hour or two are over
  ``DUPLICATE_SHARE`` (0.5) of its stored reports, and over 50 (a provider retrying because our
  answers do not reach it);
- ``processing_lag``: stored requests waiting for their task (deferred processing) for over
  5 minutes, or a provider's reports arriving over ``LAG_P95_SECONDS`` (300) after they
  happened (p95);
- ``provider_silent``: messages were sent through a provider in the last hour and it has not
  called since.

Notifiers (``SMS_DELIVERY["ALERT_NOTIFIERS"]``, dotted paths of ``notify(alert, resolved)``):
logging (the default), ``mail_admins``, the ``alert_changed`` signal (always sent), and a
webhook (``ALERT_WEBHOOK_URL``: a JSON POST).
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.mail import mail_admins
from django.db import IntegrityError, router, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.module_loading import import_string

from . import analytics, health
from .conf import app_settings
from .metrics import counted
from .models import Alert, Message

logger = logging.getLogger("delivery.alerts")

#: Sent when an alert fires and when it resolves. kwargs: alert (Alert), resolved (bool)
alert_changed = Signal()

DEFAULTS = {
    "RATE_WINDOW_HOURS": 6,
    "BASELINE_DAYS": 7,
    "RATE_DROP_POINTS": 10.0,
    "MIN_FINISHED": 50,
    "SIGNATURE_FAILURES": 20,
    "WEBHOOK_FAILURES": 10,
    "UNKNOWN_STATUSES": 10,
    "DUPLICATE_SHARE": 0.5,
    "LAG_P95_SECONDS": 300,
}
DEFAULT_NOTIFIERS = ["delivery.alerts.log_notifier"]
#: An alert resolves once its condition has been gone this long: a rate hovering around the
#: threshold, or a quiet hour under the minimum volume, does not page again and again.
RESOLVE_AFTER = timedelta(minutes=30)


@dataclass(frozen=True)
class Finding:
    """A rule's condition, true now."""

    rule: str
    key: str  #: what it is about, e.g. "country:GB"; never a number or a message id
    summary: str


def options() -> dict:
    return {**DEFAULTS, **(app_settings.ALERTS or {})}


def findings(now: datetime | None = None) -> list[Finding]:
    """Every rule's findings now."""
    now = now or timezone.now()
    settings = options()
    found = list(_rate_drops(now, settings))
    report = health.report()
    for provider in report.providers:
        refused = provider.refused_recent
        if refused > settings["SIGNATURE_FAILURES"]:
            found.append(
                Finding(
                    "signature_failures",
                    f"provider:{provider.name}",
                    f"{provider.name}: {refused} requests with a bad signature since "
                    f"{report.counted_since:%H:%M} UTC",
                )
            )
        if (provider.lag_seconds_p95 or 0) > settings["LAG_P95_SECONDS"]:
            found.append(
                Finding(
                    "processing_lag",
                    f"provider:{provider.name}",
                    f"{provider.name}: reports arrive {provider.lag_seconds_p95:.0f} s after "
                    "they happened (p95)",
                )
            )
        failures = sum(
            counted(reason, provider.name, now)
            for reason in ("storage_unavailable", "misconfigured")
        )
        if failures > settings["WEBHOOK_FAILURES"]:
            found.append(
                Finding(
                    "webhook_failures",
                    f"provider:{provider.name}",
                    f"{provider.name}: {failures} webhooks answered 503 (storage or settings) "
                    f"since {report.counted_since:%H:%M} UTC; the provider retries few of them",
                )
            )
        duplicates = counted("duplicate", provider.name, now)
        stored = provider.requests_recent
        if duplicates > 50 and duplicates > settings["DUPLICATE_SHARE"] * max(stored, 1):
            found.append(
                Finding(
                    "duplicates",
                    f"provider:{provider.name}",
                    f"{provider.name}: {duplicates} duplicate reports for {stored} requests "
                    "since the last clock hour (is our answer reaching it?)",
                )
            )
    if report.waiting_requests:
        found.append(
            Finding(
                "processing_lag",
                "deferred",
                f"{report.waiting_requests} stored requests waiting for their task for over "
                "5 minutes (are the task workers running?)",
            )
        )
    for name in report.silent:
        found.append(
            Finding(
                "provider_silent",
                f"provider:{name}",
                f"{name}: messages were sent in the last hour and it has not called since",
            )
        )
    unknown = (
        Message.objects.filter(needs_review=True, last_event_at__gte=now - timedelta(hours=1))
        .order_by()[: settings["UNKNOWN_STATUSES"] + 1]
        .count()
    )
    if unknown > settings["UNKNOWN_STATUSES"]:
        found.append(
            Finding(
                "unknown_statuses",
                "all",
                f"over {settings['UNKNOWN_STATUSES']} messages got a status this library "
                "cannot map in the last hour (review queue)",
            )
        )
    return found


#: The rate-drop rule looks at the most specific dimensions first; a later dimension's groups are
#: judged without the messages of groups already found, so one broken route is one alert (a
#: country's drop does not also page as its provider's, sender's and template's).
RATE_DIMENSIONS = ("country", "sender", "template", "provider")


def _rate_drops(now: datetime, settings: dict) -> Iterator[Finding]:
    start = analytics.hour_of(now - timedelta(hours=settings["RATE_WINDOW_HOURS"]))
    baseline_start = start - timedelta(days=settings["BASELINE_DAYS"])
    recent = analytics.rows(start, now, now=now)
    base = analytics.rows(baseline_start, start, now=now)
    found: list[tuple[str, str]] = []  # (rollup column, value) of the groups already found
    least = settings["MIN_FINISHED"]

    def unexplained(summed: list[dict]) -> list[dict]:
        return [r for r in summed if not any(r[column] == value for column, value in found)]

    for dimension in RATE_DIMENSIONS:
        column = analytics.DIMENSIONS[dimension]
        now_groups = analytics.grouped(unexplained(recent), column)
        base_groups = analytics.grouped(unexplained(base), column)
        for key, figures in sorted(now_groups.items()):
            was = base_groups.get(key)
            if was is None or was.rate is None or was.judged < least:
                continue
            name = analytics.shown(dimension, "" if key == "—" else key) or "—"
            if not figures.receipts_reported and figures.total >= least:
                summary = (
                    f"{dimension} {name}: no delivery receipt at all for {figures.total} "
                    f"messages over the last {settings['RATE_WINDOW_HOURS']} h, against "
                    f"{was.rate:.0%} delivered over the {settings['BASELINE_DAYS']} days before"
                )
            elif (
                figures.rate is not None
                and figures.judged >= least
                and (was.rate - figures.rate) * 100 > settings["RATE_DROP_POINTS"]
            ):
                summary = (
                    f"delivery rate of {dimension} {name}: {figures.rate:.0%} over the last "
                    f"{settings['RATE_WINDOW_HOURS']} h against {was.rate:.0%} over the "
                    f"{settings['BASELINE_DAYS']} days before ({figures.judged} messages)"
                )
            else:
                continue
            found.append((column, "" if key == "—" else key))
            yield Finding("rate_drop", f"{dimension}:{name}", summary)


@dataclass
class Outcome:
    fired: list[Alert]
    resolved: list[Alert]
    still_open: list[Alert]


def evaluate(now: datetime | None = None) -> Outcome:
    """Open an alert for each new finding, resolve those no longer found; notify both, once."""
    now = now or timezone.now()
    current = {(f.rule, f.key): f for f in findings(now)}
    outcome = Outcome([], [], [])
    using = router.db_for_write(Alert)
    with transaction.atomic(using=using):
        open_alerts = {
            (a.rule, a.key): a
            for a in Alert.objects.using(using).select_for_update().filter(resolved_at=None)
        }
        for key, alert in open_alerts.items():
            if key in current:
                alert.last_seen_at = now
                alert.summary = current[key].summary[:300]
                alert.save(update_fields=["last_seen_at", "summary"])
                outcome.still_open.append(alert)
            elif now - alert.last_seen_at >= RESOLVE_AFTER:
                alert.resolved_at = now
                alert.save(update_fields=["resolved_at"])
                outcome.resolved.append(alert)
            else:  # gone for less than RESOLVE_AFTER: a flapping rate is one incident
                outcome.still_open.append(alert)
        for key, finding in current.items():
            if key in open_alerts:
                continue
            try:
                with transaction.atomic(using=using):
                    created = Alert.objects.using(using).create(
                        rule=finding.rule,
                        key=finding.key[:200],
                        summary=finding.summary[:300],
                        opened_at=now,
                        last_seen_at=now,
                    )
            except IntegrityError:
                continue  # a run at the same time opened it (and notified it)
            outcome.fired.append(created)
    for alert in outcome.fired:
        _notify(alert, resolved=False)
    for alert in outcome.resolved:
        _notify(alert, resolved=True)
    return outcome


def _notify(alert: Alert, *, resolved: bool) -> None:
    alert_changed.send_robust(sender=Alert, alert=alert, resolved=resolved)
    for path in app_settings.ALERT_NOTIFIERS or DEFAULT_NOTIFIERS:
        try:
            import_string(path)(alert, resolved)
        except Exception:  # noqa: BLE001 - one notifier failing must not stop the others
            logger.exception("alert notifier %s failed", path)


def describe(alert: Alert, resolved: bool) -> str:
    if resolved:
        return f"RESOLVED [{alert.rule}] {alert.summary} (open since {alert.opened_at:%Y-%m-%d %H:%M} UTC)"
    return f"ALERT [{alert.rule}] {alert.summary}"


def log_notifier(alert: Alert, resolved: bool) -> None:
    (logger.info if resolved else logger.warning)(describe(alert, resolved))


def mail_admins_notifier(alert: Alert, resolved: bool) -> None:
    mail_admins(f"SMS delivery: {describe(alert, resolved)}"[:150], describe(alert, resolved))


def webhook_notifier(alert: Alert, resolved: bool) -> None:
    """POST ``{"rule", "key", "summary", "state", "opened_at", "resolved_at"}`` as JSON to
    ``SMS_DELIVERY["ALERT_WEBHOOK_URL"]`` (a chat's incoming webhook, an incident tool)."""
    url = app_settings.ALERT_WEBHOOK_URL
    if not url:
        return
    body = json.dumps(
        {
            "rule": alert.rule,
            "key": alert.key,
            "summary": alert.summary,
            "state": "resolved" if resolved else "firing",
            "opened_at": alert.opened_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's setting
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass
