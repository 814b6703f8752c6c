"""``manage.py sms_delivery_rollup``: rebuild the analytics rollups from the messages."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from delivery.analytics import rebuild
from delivery.models import Message
from delivery.progress import Progress


class Command(BaseCommand):
    help = (
        "Rebuild the counts the 'Delivery analytics' page and the alert rules read, from the "
        "messages of the last --days days (default 2: what reports, reconciliation and replays "
        "usually still change). Run it every few minutes from cron, and with --days 61 once a "
        "night so older changes (a late replay) are counted too (the 30-day view compares "
        "with the 30 days before). Whole hours are replaced, "
        "one short transaction per day. A million messages (all of them) took 27 s on a "
        "2-core machine with PostgreSQL (make bench-console); the default two days is a "
        "small share of that."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, default=2.0, help="How far back (default 2).")

    def handle(self, *args, days, **options):
        if days <= 0:
            raise CommandError("--days must be more than 0.")
        now = timezone.now()
        start = now - timedelta(days=days)
        total = Message.objects.filter(created_at__gte=start.replace(minute=0, second=0)).count()
        progress = Progress(self.stdout.write, total or None, "messages")
        counted = rebuild(start, now, progress=progress.update)
        self.stdout.write(
            self.style.SUCCESS(f"{counted:,} messages counted since {start:%Y-%m-%d %H:%M} UTC.")
        )
