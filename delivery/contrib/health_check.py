"""The checks of ``sms_delivery_health`` as django-health-check (4.x) checks.

Requires ``django-health-check``. List the ones you want in your health view::

    from health_check.views import HealthCheckView

    path("ht/", HealthCheckView.as_view(checks=[
        "health_check.checks.Database",
        "delivery.contrib.health_check.DeliveryDatabase",
        ("delivery.contrib.health_check.StuckMessages", {"stuck_hours": 12, "max_stuck": 0}),
        ("delivery.contrib.health_check.ReviewQueue", {"max_items": 100}),
        "delivery.contrib.health_check.SilentProviders",
        ("delivery.contrib.health_check.ReportLag", {"max_lag_seconds": 300}),
        ("delivery.contrib.health_check.RefusedSignatures", {"max_share": 0.05}),
    ]))

An unreachable database is "unavailable"; the others are warnings (delivery tracking works but
needs attention). Messages name no one: counts and provider names only.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from delivery.health import database_reachable, report


@dataclasses.dataclass
class DeliveryDatabase(HealthCheck):
    """The database of the delivery records answers."""

    def run(self) -> None:
        if not database_reachable():
            raise ServiceUnavailable("the delivery records' database is unreachable")


@dataclasses.dataclass
class StuckMessages(HealthCheck):
    """Messages of the last ``window_days`` not final ``stuck_hours`` after they were sent."""

    stuck_hours: float = 12
    max_stuck: int = 0
    window_days: float = 7

    def run(self) -> None:
        stuck = report(
            stuck_after=timedelta(hours=self.stuck_hours),
            stuck_window=timedelta(days=self.window_days),
        ).stuck_messages
        if stuck > self.max_stuck:
            raise ServiceWarning(f"{stuck} message(s) not final after {self.stuck_hours:g} h")


@dataclasses.dataclass
class ReviewQueue(HealthCheck):
    """Messages with an unknown status, and requests that could not be read."""

    max_items: int = 100

    def run(self) -> None:
        result = report()
        waiting = max(result.review_messages, result.review_requests)
        if waiting > self.max_items:
            raise ServiceWarning(f"{waiting} item(s) in the review queue")


@dataclasses.dataclass
class SilentProviders(HealthCheck):
    """Providers we sent through that have not called since."""

    silent_minutes: float = 60

    def run(self) -> None:
        silent = report(silent_after=timedelta(minutes=self.silent_minutes)).silent
        if silent:
            raise ServiceWarning(f"no request since messages were sent: {', '.join(silent)}")


@dataclasses.dataclass
class ReportLag(HealthCheck):
    """How late reports arrive (our receipt time minus the provider's), 95th percentile."""

    max_lag_seconds: float = 300

    def run(self) -> None:
        late = [
            f"{p.name} {p.lag_seconds_p95:.0f} s"
            for p in report().providers
            if p.lag_seconds_p95 is not None and p.lag_seconds_p95 > self.max_lag_seconds
        ]
        if late:
            raise ServiceWarning(f"reports arrive late (p95): {', '.join(late)}")


@dataclasses.dataclass
class RefusedSignatures(HealthCheck):
    """The share of a provider's requests refused for their signature in the last hour."""

    max_share: float = 0.05

    def run(self) -> None:
        refused = [
            f"{p.name} {p.refused_share:.0%}"
            for p in report().providers
            if p.refused_share > self.max_share
        ]
        if refused:
            raise ServiceWarning(f"requests refused for their signature: {', '.join(refused)}")
