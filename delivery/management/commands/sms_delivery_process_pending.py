"""``manage.py sms_delivery_process_pending``: apply stored requests a lost drain left."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand

from delivery.deferred import SWEEP_AFTER, sweep, waiting
from delivery.progress import Progress


class Command(BaseCommand):
    help = (
        "Deferred processing (SMS_DELIVERY['PROCESSING'] = 'deferred'): apply the stored "
        "requests still waiting after --older-than-seconds (their drain was never enqueued, "
        "or lost). Each is applied once, in its own short transaction, however many drains "
        "or sweepers run at the same time. Run it from cron every few minutes. It applies "
        "about 100 requests a second (make bench-ingest: four drains applied 409 a second "
        "on 2 cores), so a million waiting requests take about three hours; start drains "
        "(delivery.deferred.drain) on more workers to go faster."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-seconds",
            type=float,
            default=SWEEP_AFTER.total_seconds(),
            help=f"Only requests waiting longer than this (default {SWEEP_AFTER.seconds}).",
        )
        parser.add_argument("--limit", type=int, help="At most this many requests.")
        parser.add_argument("--dry-run", action="store_true", help="Count them, apply none.")

    def handle(self, *args, older_than_seconds, limit, dry_run, **options):
        older_than = timedelta(seconds=older_than_seconds)
        total = waiting(older_than).count()
        if limit is not None:
            total = min(total, limit)
        if dry_run:
            self.stdout.write(f"{total:,} stored request(s) waiting; none applied (dry run).")
            return
        progress = Progress(self.stdout.write, total, "requests", every=500)
        counts = sweep(older_than, limit=limit, progress=progress.update)
        self.stdout.write(
            self.style.SUCCESS(", ".join(f"{n:,} {outcome}" for outcome, n in counts.items()))
        )
