"""Seed demo messages with full delivery timelines, through the real ingest service.

Each message is sent with :func:`~delivery.ingest.register_outbound` and its provider callbacks
are fed to :func:`~delivery.ingest.ingest`, exactly as the webhook view would, so the demo
console (and benchmarks) see data the real pipeline produced: duplicates, callbacks arriving
out of order or before the send call returned, receipts that never come, errors with their
categories and status words the mappings do not know (the review queue).

Deterministic and idempotent: everything is drawn from ``random.Random(--seed)`` and the
provider message ids are hashes of the seed and the message's index, so a second run leaves the
stored evidence as it was (no duplicate counted, no time moved), and ``--messages 300`` after
``--messages 200`` adds exactly the 100 missing messages.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, router, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from delivery import metrics
from delivery.ingest import ingest, register_outbound, store_unparsed
from delivery.models import Message, MessageEvent, RawWebhook
from providers.bulk_seed import TEMPLATES, BulkSeeder
from providers.seeding import (
    RECEIPT_LAG,
    RETRY_LAG,
    Generator,
    Plan,
    raw_request,
    unreadable_request,
)

BULK_BATCH = 25_000


class Command(BaseCommand):
    help = (
        "Create demo messages with full delivery timelines through the ingest service "
        "(about 230 messages a second on SQLite, 130 on PostgreSQL). Deterministic for a given --seed; running it again adds "
        "nothing. --bulk N builds a production-size PostgreSQL database instead, for measuring "
        "the console: 2,000 messages seeded this way, copied with set-based SQL until N exist "
        "(1,000,000 messages: about 3 minutes on a 2-core machine; see docs/performance.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--messages", type=int, default=200, help="How many (default 200).")
        parser.add_argument(
            "--bulk",
            type=int,
            metavar="N",
            help="PostgreSQL only: reach N messages by copying 2,000 seeded ones (their events "
            "and raw requests too) in batches. A copy's encrypted payloads are its template's.",
        )
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument(
            "--days", type=int, default=14, help="Spread sends over the last D days (default 14)."
        )
        parser.add_argument(
            "--degraded",
            metavar="COUNTRY",
            help="Also send --degraded-messages Twilio SMS to COUNTRY (ISO code) over the last "
            "6 hours, 60 %% of them undelivered for carrier filtering: a route gone bad, for "
            "the analytics page and the rate-drop alert.",
        )
        parser.add_argument("--degraded-messages", type=int, default=120)
        parser.add_argument(
            "--batch-size",
            type=int,
            help="Messages per transaction (default 50; with --bulk, 25,000).",
        )

    def handle(self, *args, **options):
        with metrics.paused():  # backdated history: no live counter (the duplicates alert) sees it
            self.seed(**options)

    def seed(
        self, *, messages, bulk, seed, days, batch_size, degraded, degraded_messages, **options
    ):
        batch_size = batch_size or (BULK_BATCH if bulk else 50)
        if messages < 0 or days < 1 or batch_size < 1 or (bulk is not None and bulk < 1):
            raise CommandError("--messages must be >= 0, --bulk, --days and --batch-size >= 1.")
        if bulk is not None:
            return self.bulk(bulk, seed, days, batch_size)
        self.seed_messages(messages, seed, days, batch_size)
        if degraded:
            self.seed_degraded(degraded.upper(), degraded_messages, seed, days)

    def seed_degraded(self, country: str, messages: int, seed: int, days: int) -> None:
        generator = Generator(seed + 1, days)
        try:
            plans = [generator.degraded(i, country, hours=6) for i in range(messages)]
        except ValueError as exc:
            raise CommandError(f"--degraded {country}: {exc}") from exc
        totals: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        now = timezone.now().replace(microsecond=0)
        for start in range(0, len(plans), 50):
            self.seed_batch(plans[start : start + 50], now, totals, statuses)
        self.stdout.write(
            self.style.SUCCESS(
                f"Degraded route: {totals['created']} messages to {country} in the last 6 hours "
                f"({statuses.get('undelivered', 0)} undelivered)."
            )
        )

    def bulk(self, total: int, seed: int, days: int, batch_size: int) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("--bulk needs PostgreSQL (set-based SQL); use --messages here.")
        started = time.monotonic()
        keys = set(self.seed_messages(min(total, TEMPLATES), seed, days, 50))
        candidates = Message.objects.filter(provider_message_id__in=[key[1] for key in keys])
        templates = [
            pk
            for pk, *key in candidates.values_list("pk", "provider", "provider_message_id")
            if tuple(key) in keys
        ]
        self.stdout.write(f"Copying them until {total:,} messages exist…")
        seeder = BulkSeeder(seed, days, batch_size, self.stdout.write)
        counts = seeder.run(templates, total)
        self.stdout.write(
            self.style.SUCCESS(
                f"Done in {time.monotonic() - started:.0f}s: {counts.messages:,} messages, "
                f"{counts.events:,} events, {counts.raw:,} raw requests and {counts.inbound:,} "
                "inbound messages added by copying."
            )
        )

    def seed_messages(
        self, messages: int, seed: int, days: int, batch_size: int
    ) -> list[tuple[str, str]]:
        """Seed ``messages`` through the ingest service; (provider, message id) of each."""
        self.stdout.write(f"Seeding {messages} demo messages (seed {seed}, last {days} days)…")
        started = time.monotonic()
        generator = Generator(seed, days)
        now = timezone.now().replace(microsecond=0)
        totals: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        keys = []
        for start in range(0, messages, batch_size):
            plans = [generator.plan(i) for i in range(start, min(start + batch_size, messages))]
            keys += [(plan.provider, plan.message_id) for plan in plans]
            self.seed_batch(plans, now, totals, statuses)
            self.stdout.write(
                f"  {start + len(plans)}/{messages} messages, {totals['stored']} events stored, "
                f"{totals['duplicates']} duplicates ({time.monotonic() - started:.1f}s)"
            )
        per_status = ", ".join(f"{status} {n}" for status, n in statuses.most_common())
        self.stdout.write(
            self.style.SUCCESS(
                f"Done in {time.monotonic() - started:.1f}s: {totals['created']} messages created "
                f"({messages - totals['created']} already there), {totals['stored']} events "
                f"stored, {totals['duplicates']} duplicates; final status: {per_status or '-'}; "
                f"{totals['review']} need review, {totals['unreadable']} unreadable requests kept."
            )
        )
        return keys

    def seed_batch(self, plans: list[Plan], now: datetime, totals: Counter, statuses: Counter):
        """Send and call back one batch of messages in one transaction, one ingest() per callback."""
        ids = [plan.message_id for plan in plans]
        existing = set(
            Message.objects.filter(provider_message_id__in=ids).values_list(
                "provider", "provider_message_id"
            )
        )
        # A message already seeded keeps its evidence untouched: feeding its callbacks again
        # would count them as the provider's duplicates.
        plans = [plan for plan in plans if (plan.provider, plan.message_id) not in existing]
        ids = [plan.message_id for plan in plans]
        early, late, sent_at = [], [], {}
        for plan in plans:
            key = (plan.provider, plan.message_id)
            sent_at[key] = now - plan.age
            events = plan.events(sent_at[key])
            split = 1 if plan.early else 0  # callback that outran the send call's response
            early += events[:split]
            late += events[split:]
        created = []
        received: list[RawWebhook] = []  # each request, with the time it arrived

        def call_back(events):
            """One request per callback, as the webhook view stores it."""
            results = []
            for event in events:
                result = ingest([event], raw_request(event))
                if result.raw_webhook is not None and event.provider_occurred_at:
                    # A repeated callback is the provider's retry, a little later.
                    lag = RECEIPT_LAG + (RETRY_LAG if result.duplicates else timedelta(0))
                    result.raw_webhook.received_at = event.provider_occurred_at + lag
                    received.append(result.raw_webhook)
                results.append(result)
            return results

        with transaction.atomic(using=router.db_for_write(Message)):
            results = call_back(early)
            for plan in plans:
                message = register_outbound(
                    provider=plan.provider,
                    provider_message_id=plan.message_id,
                    to=plan.to,
                    sender_identity=plan.sender,
                    template_key=plan.template_key,
                    product_reference=plan.product_reference,
                    segments=plan.segments,
                )
                message.created_at = message.registered_at = sent_at[plan.provider, plan.message_id]
                created.append(message)
            results += call_back(late)
            for plan in plans:
                if plan.unreadable and (
                    unreadable := unreadable_request(
                        plan.events(sent_at[plan.provider, plan.message_id])[-1]
                    )
                ):
                    raw, error = unreadable
                    record = store_unparsed(raw, error)
                    record.received_at = sent_at[plan.provider, plan.message_id] + RECEIPT_LAG
                    received.append(record)
                    totals["unreadable"] += 1
            # Demo data only: register_outbound and ingest stamp "now", so backdate the send
            # time and the receive times with bulk updates (no save(), no signal) to spread the
            # messages over --days as if their callbacks had arrived a few seconds after the fact.
            RawWebhook.objects.bulk_update(received, ["received_at"])
            Message.objects.bulk_update(created, ["created_at", "registered_at"])
            new_events = MessageEvent.objects.filter(
                message__in=created, provider_occurred_at__isnull=False
            )
            new_events.update(received_at=F("provider_occurred_at") + RECEIPT_LAG)
            new_events.filter(duplicate_count__gt=0).update(
                last_duplicate_at=F("provider_occurred_at") + RECEIPT_LAG + RETRY_LAG
            )
            Message.objects.filter(pk__in=[m.pk for m in created]).update(
                last_event_at=Subquery(
                    MessageEvent.objects.filter(message=OuterRef("pk"))
                    .order_by("-received_at")
                    .values("received_at")[:1]
                )
            )
        totals["created"] += len(created)
        totals["stored"] += sum(result.stored for result in results)
        totals["duplicates"] += sum(result.duplicates for result in results)
        for status, review in Message.objects.filter(provider_message_id__in=ids).values_list(
            "current_status", "needs_review"
        ):
            statuses[status] += 1
            totals["review"] += review
