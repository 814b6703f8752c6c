"""``manage.py sms_delivery_replay``: read stored raw requests again with the current adapters."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from delivery.lifecycle import Status
from delivery.models import Message, MessageEvent, RawWebhook
from delivery.progress import Progress
from delivery.replay import replay


class Command(BaseCommand):
    help = (
        "Read stored raw requests again with the current adapters, after a mapping fix: what is "
        "read differently is added as a 'replay' event (summaries and signals follow), what "
        "could not be read before and can now leaves the review queue. Replaying twice changes "
        "nothing; requests whose signature was never checked are refused. Streams in batches, "
        "one short transaction per request: 200 to 370 requests a second on a 2-core machine, "
        "so all of 1,000,000 messages' requests (2.4 M) would take 2 to 3 hours; use the "
        "filters (docs/operations.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--provider", help="Only this provider's requests.")
        parser.add_argument("--since", help="Received at or after (ISO date or time, UTC).")
        parser.add_argument("--until", help="Received before (ISO date or time, UTC).")
        parser.add_argument(
            "--review",
            action="store_true",
            help="Only the review queue: unreadable requests and reports read as 'unknown'.",
        )
        parser.add_argument("--message", help="Only the requests of this message (public id).")
        parser.add_argument("--ids", help="Only these raw request ids, comma-separated.")
        parser.add_argument("--dry-run", action="store_true", help="Say what would change.")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, dry_run, batch_size, **options):
        raws = self.select(options)
        total = raws.count()
        self.stdout.write(f"{'Dry run: ' if dry_run else ''}replaying {total:,} stored request(s)…")
        progress = Progress(self.stdout.write, total, "requests")
        states: Counter[str] = Counter()
        last_id, done = 0, 0
        while True:
            batch = list(raws.filter(pk__gt=last_id).order_by("pk")[:batch_size])
            if not batch:
                break
            for raw in batch:
                outcome = replay(raw, dry_run=dry_run)
                states[outcome.state] += 1
                for change in outcome.changes:
                    self.stdout.write(f"  #{raw.pk} {change}")
                if outcome.reason:
                    self.stdout.write(f"  #{raw.pk} {outcome.state}: {outcome.reason}")
            last_id, done = batch[-1].pk, done + len(batch)
            progress.update(done)
        summary = ", ".join(f"{n:,} {state}" for state, n in states.most_common()) or "nothing"
        verb = "would be" if dry_run else "were"
        self.stdout.write(self.style.SUCCESS(f"Done: {summary} ({verb} changed as shown)."))

    def select(self, options):
        raws = RawWebhook.objects.all()
        if options["provider"]:
            raws = raws.filter(provider=options["provider"])
        for name, lookup in (("since", "received_at__gte"), ("until", "received_at__lt")):
            if options[name]:
                raws = raws.filter(**{lookup: _when(options[name], name)})
        if options["review"]:
            unknown = MessageEvent.objects.filter(status=Status.UNKNOWN).values("raw_webhook")
            raws = raws.filter(~Q(parse_error="") | Q(pk__in=unknown))
        if options["message"]:
            message = Message.objects.filter(public_id=options["message"]).first()
            if message is None:
                raise CommandError(f"No message {options['message']!r}.")
            raws = raws.filter(pk__in=message.events.values("raw_webhook"))
        if options["ids"]:
            try:
                ids = [int(part) for part in options["ids"].split(",") if part.strip()]
            except ValueError:
                raise CommandError("--ids takes numbers separated by commas.") from None
            raws = raws.filter(pk__in=ids)
        return raws


def _when(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--{name} is not an ISO date or time: {text!r}.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
