"""``manage.py sms_delivery_reconcile``: ask the providers about messages still not final."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from delivery.conf import app_settings
from delivery.exceptions import ConfigurationError, ProviderNotConfigured
from delivery.health import report
from delivery.progress import Progress
from delivery.reconcile import due, reconcile
from delivery.registry import get_provider


class Command(BaseCommand):
    help = (
        "Ask each provider's API (through its SDK) about the messages still not final "
        "POLL_AFTER_MINUTES after they were sent (default 12 hours), and record what it says as "
        "'poll' events: summaries and signals follow as for webhooks. At most POLLS_PER_SECOND "
        "calls a second per provider (default 2: 7,200 messages an hour); resumable (a message "
        "asked about is not asked again for --repoll-minutes); --dry-run asks but records "
        "nothing. Also lists providers gone silent. At 1,000,000 messages, choosing what to ask "
        "about took 0.16 s and our side of each answer 4 ms; the provider's API is the cost "
        "(docs/operations.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", action="append", help="Only this provider (repeatable).")
        parser.add_argument("--limit", type=int, help="Ask about at most this many per provider.")
        parser.add_argument(
            "--older-than-minutes",
            type=float,
            help="Ask about messages not final this long after sending (overrides "
            "POLL_AFTER_MINUTES).",
        )
        parser.add_argument(
            "--max-age-days",
            type=float,
            default=7,
            help="Never ask about messages older than this (default 7).",
        )
        parser.add_argument(
            "--repoll-minutes",
            type=float,
            default=360,
            help="Do not ask again about a message asked about this recently (default 360: a "
            "message that never gets a final status is asked about 4 times a day for "
            "--max-age-days).",
        )
        parser.add_argument(
            "--silent-minutes",
            type=float,
            default=60,
            help="Report providers we sent through in this window that have not called since.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Ask, record nothing.")

    def handle(self, *args, dry_run, limit, **options):
        names = options["provider"] or list(app_settings.PROVIDERS)
        older_than = options["older_than_minutes"]
        window = {
            "now": timezone.now(),
            "max_age": timedelta(days=options["max_age_days"]),
            "repoll_after": timedelta(minutes=options["repoll_minutes"]),
            "older_than": timedelta(minutes=older_than) if older_than else None,
        }
        stopped = [
            problem
            for name in names
            if (problem := self.reconcile_one(name, window, dry_run=dry_run, limit=limit))
        ]
        silent = report(silent_after=timedelta(minutes=options["silent_minutes"])).silent
        for name in silent:
            self.stdout.write(
                self.style.WARNING(f"{name}: no request since messages were sent (silent)")
            )
        if stopped:
            raise CommandError("; ".join(stopped) + ". Run again later: it resumes.")

    def reconcile_one(self, name: str, window: dict, *, dry_run: bool, limit: int | None) -> str:
        """Ask one provider; why it stopped early, "" if it did not."""
        try:
            provider = get_provider(name)
        except ConfigurationError as exc:
            raise CommandError(f"{name}: {exc}") from exc
        except ProviderNotConfigured as exc:
            raise CommandError(f"{name} is not enabled in SMS_DELIVERY['PROVIDERS'].") from exc
        messages = due(provider, **window)
        if not provider.can_poll:
            self.stdout.write(
                f"{name}: {messages.count():,} message(s) not final, not asked about: "
                f"{provider.cannot_poll_because}."
            )
            return ""
        total = messages.count() if limit is None else min(limit, messages.count())
        prefix = "Dry run: " if dry_run else ""
        self.stdout.write(f"{prefix}{name}: asking about {total:,} message(s) not final…")
        progress = Progress(self.stdout.write, total, "asked", every=100)
        tally = reconcile(
            provider,
            messages,
            dry_run=dry_run,
            limit=limit,
            report=lambda message, line: self.stdout.write(f"  {message.public_id}: {line}"),
            progress=progress.update,
        )
        moves = ", ".join(
            f"{before} → {after}: {n}" for (before, after), n in tally.transitions.items()
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"{name}: asked {tally.asked:,}; {tally.changed:,} changed"
                + (f" ({moves})" if moves else "")
                + f", {tally.unchanged:,} unchanged, {tally.not_found:,} not found, "
                f"{tally.failed:,} failed."
            )
        )
        if not tally.stopped:
            return ""
        problem = f"{name}: stopped early, {tally.stopped}"
        self.stdout.write(self.style.ERROR(problem))
        return problem
