"""``manage.py sms_delivery_alerts``: evaluate the alert rules, notify what fired or resolved."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from delivery import alerts
from delivery.analytics import rebuild


class Command(BaseCommand):
    help = (
        "Evaluate the alert rules (delivery rate drops by country, provider, sender and "
        "template; signature failures; unknown statuses; duplicates; processing lag; silent "
        "providers) and notify each alert once when it fires and once when it resolves. "
        "Rebuilds the last hours of the analytics rollup first. Run it every 5 minutes from "
        "cron. Thresholds: SMS_DELIVERY['ALERTS']; notifiers: SMS_DELIVERY['ALERT_NOTIFIERS']."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-rollup",
            action="store_true",
            help="Do not rebuild the rollup first (sms_delivery_rollup runs on its own).",
        )

    def handle(self, *args, no_rollup, **options):
        now = timezone.now()
        if not no_rollup:
            window = alerts.options()["RATE_WINDOW_HOURS"]
            rebuild(now - timedelta(hours=window + 1), now)
        outcome = alerts.evaluate(now)
        for alert in outcome.fired:
            self.stdout.write(self.style.ERROR(alerts.describe(alert, resolved=False)))
        for alert in outcome.resolved:
            self.stdout.write(self.style.SUCCESS(alerts.describe(alert, resolved=True)))
        for alert in outcome.still_open:
            self.stdout.write(f"still open [{alert.rule}] {alert.summary}")
        if not (outcome.fired or outcome.resolved or outcome.still_open):
            self.stdout.write("No alert.")
