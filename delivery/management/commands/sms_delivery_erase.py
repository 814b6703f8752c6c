"""``manage.py sms_delivery_erase --number …``: remove every clear-text trace of a number."""

from __future__ import annotations

import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from delivery.erasure import erase, find
from delivery.exceptions import InvalidNumber
from delivery.masking import mask_phone


class Command(BaseCommand):
    stealth_options = ("stdin",)  #: call_command(..., stdin=...), as createsuperuser does
    help = (
        "Erase a person's number: blank its encrypted copies, the raw requests and the event "
        "payloads about it, found through the keyed hash (only the review queue is decrypted "
        "and searched). Statuses, timelines and the hash stay. Recorded as an Erasure with "
        "who asked and why. 0.8 s for one person at 1,000,000 messages (docs/operations.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--number",
            required=True,
            help="In any common format; national ones need DEFAULT_REGION. '-' reads it from "
            "standard input, which keeps it out of the shell history and the process list "
            "(echo ... | manage.py sms_delivery_erase --number -).",
        )
        parser.add_argument("--reason", default="", help="Why (a ticket or request reference).")
        parser.add_argument(
            "--actor", help="Who asked for it (default: the operating-system user)."
        )
        parser.add_argument("--dry-run", action="store_true", help="Say what would be blanked.")

    def handle(self, *args, number, reason, actor, dry_run, **options):
        if number == "-":
            number = (options.get("stdin") or sys.stdin).readline().strip()
        try:
            if dry_run:
                _, found = find(number)
                counts = found.counts()
            else:
                record = erase(
                    number, actor=actor or f"{getpass.getuser()} (manage.py)", reason=reason
                )
                counts = dict(record.touched)
        except InvalidNumber as exc:
            raise CommandError(str(exc)) from exc
        searched = counts.pop("requests_searched", 0)
        summary = ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in counts.items())
        summary += f" ({searched:,} other requests decrypted and searched)"
        masked = mask_phone(number) or "the number"
        if dry_run:
            self.stdout.write(f"Dry run for {masked}: would blank {summary}.")
        else:
            self.stdout.write(
                self.style.SUCCESS(f"Erased {masked}: {summary} (erasure #{record.pk}).")
            )
