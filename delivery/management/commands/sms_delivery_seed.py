"""Seed demo messages with full delivery timelines, through the real ingest service.

Each message is sent with :func:`~delivery.ingest.register_outbound` and its provider callbacks
are fed to :func:`~delivery.ingest.ingest`, exactly as the webhook view would, so the demo
console (and benchmarks) see data the real pipeline produced: duplicates, callbacks arriving
out of order or before the send call returned, receipts that never come, errors with their
categories and status words the mappings do not know (the review queue).

Deterministic and idempotent: everything is drawn from ``random.Random(--seed)`` and the
provider message ids are hashes of the seed and the message's index, so a second run stores
nothing new (it only counts duplicates), and ``--messages 300`` after ``--messages 200`` adds
exactly the 100 missing messages. Event times are offsets from the message's creation time,
which a re-run reads back from the database.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from django.core.management.base import BaseCommand, CommandError
from django.db import router, transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from delivery.events import NormalizedEvent
from delivery.ingest import ingest, register_outbound
from delivery.lifecycle import ErrorCategory, Status
from delivery.models import Message, MessageEvent
from providers.twilio import TwilioProvider

RECEIPT_LAG = timedelta(seconds=2)
TWILIO = TwilioProvider()  # its status table and error catalogue; no settings are read

# Vonage SMS API delivery-receipt ``status`` -> canonical (../shared/providers.md §2.1,
# https://developer.vonage.com/messaging/sms/guides/delivery-receipts). ``accepted`` and
# ``buffered`` are intermediate DLRs from the downstream carrier, so the message has left
# Vonage: SENT. ``unknown`` is deliberately absent so it shows up in the review queue.
VONAGE_STATUSES = {
    "accepted": Status.SENT,
    "buffered": Status.SENT,
    "delivered": Status.DELIVERED,
    "expired": Status.EXPIRED,
    "failed": Status.FAILED,
    "rejected": Status.REJECTED,
    "undelivered": Status.UNDELIVERED,
}
# Vonage DLR ``err-code`` -> category (same guide, "DLR error codes").
VONAGE_ERRORS = {
    "1": ErrorCategory.UNKNOWN,  # Unknown
    "2": ErrorCategory.UNREACHABLE_HANDSET,  # Absent Subscriber - Temporary
    "3": ErrorCategory.INVALID_NUMBER,  # Absent Subscriber - Permanent
    "6": ErrorCategory.CARRIER_FILTERING,  # Anti-Spam Rejection
    "7": ErrorCategory.UNREACHABLE_HANDSET,  # Handset Busy
    "8": ErrorCategory.PROVIDER_OUTAGE,  # Network Error
    "9": ErrorCategory.OPT_OUT,  # Illegal Number (recipient asked not to receive them)
    "14": ErrorCategory.CARRIER_FILTERING,  # Number Blocked by Carrier
}
# Plivo status callback ``Status`` -> canonical (../shared/providers.md §3,
# https://plivo.com/docs/messaging/api/message/message-status-callbacks).
PLIVO_STATUSES = {
    "queued": Status.ACCEPTED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "read": Status.READ,
    "rejected": Status.REJECTED,
}
# Plivo ``ErrorCode`` -> category (https://www.plivo.com/blog/introducing-sms-error-codes/).
PLIVO_ERRORS = {
    "20": ErrorCategory.PROVIDER_OUTAGE,  # Network error
    "30": ErrorCategory.CARRIER_FILTERING,  # Spam detected
    "50": ErrorCategory.INVALID_NUMBER,  # Invalid destination number
    "70": ErrorCategory.INVALID_NUMBER,  # Destination permanently unavailable
    "80": ErrorCategory.UNREACHABLE_HANDSET,  # Destination temporarily unavailable
    "90": ErrorCategory.PROVIDER_OUTAGE,  # No route available
    "200": ErrorCategory.OPT_OUT,  # Source number blocked by STOP
}

COUNTRIES = {"US": 30, "GB": 12, "IN": 10, "DE": 8, "BR": 8, "FR": 7, "CA": 6}
COUNTRIES |= {"NG": 5, "AU": 5, "MX": 5, "JP": 4}
ALPHANUMERIC_COUNTRIES = {"GB", "DE", "FR", "IN", "NG", "AU"}  # where "ACME" may send
TEMPLATES = {  # template key -> (product reference prefix, weight)
    "otp_login": ("login", 40),
    "otp_signup": ("signup", 15),
    "password_reset": ("reset", 12),
    "order_shipped": ("order", 20),
    "appointment_reminder": ("appointment", 13),
}
LONG_CODES = ("+15017122661", "+15017250604", "+16232320112")  # Twilio numbers
OTHER_LONG_CODES = {"vonage": "+12025550143", "plivo": "+14155551234"}
SHORT_CODE = "72345"  # a US short code: US recipients only
ALPHANUMERIC = "ACME"
MESSAGING_SERVICE = "MG9752274e9e519418a7406176694466fa"
WHATSAPP_SENDER = "whatsapp:+14155238886"  # Twilio's public WhatsApp Sandbox number
DEMO_ACCOUNT_SID = "AC" + "d3" * 16
DEMO_CHANNEL_SID = "XE" + "5e" * 16


@dataclass(frozen=True)
class Outcome:
    """One way a message's life can go: the provider's status words, in the order it sends them."""

    name: str
    steps: tuple[str, ...]
    errors: tuple[str, ...] = ()  #: the last step carries one of these error codes


_TWILIO_UNDELIVERED = ("30003", "30005", "30006", "30007", "30008")
OUTCOMES: dict[tuple[str, str], tuple[tuple[int, Outcome], ...]] = {
    ("twilio", "sms"): (
        (66, Outcome("delivered", ("sent", "delivered"))),
        (11, Outcome("undelivered", ("sent", "undelivered"), _TWILIO_UNDELIVERED)),
        (8, Outcome("failed", ("failed",), ("30001", "30032", "30034", "21610"))),
        (9, Outcome("no receipt", ("sent",))),
        # Deprecated word that TwilioProvider.statuses does not map: UNKNOWN, review queue.
        (3, Outcome("unmapped", ("sent", "partially_delivered"))),
    ),
    ("twilio", "whatsapp"): (
        (60, Outcome("read", ("sent", "delivered", "read"))),
        (22, Outcome("delivered", ("sent", "delivered"))),
        (8, Outcome("failed", ("failed",), ("63016",))),
        (6, Outcome("no receipt", ("sent",))),
    ),
    ("vonage", "sms"): (
        (64, Outcome("delivered", ("accepted", "delivered"))),
        # Vonage sends a final ``expired`` itself 72 h after an undelivered message; which
        # err-code comes with it is not documented, so the demo picks plausible ones.
        (8, Outcome("expired", ("buffered", "expired"), ("2", "7"))),
        (8, Outcome("failed", ("accepted", "failed"), ("3", "8", "9"))),
        (7, Outcome("rejected", ("rejected",), ("6", "14"))),
        (8, Outcome("no receipt", ("accepted",))),
        (4, Outcome("unmapped", ("accepted", "unknown"), ("1",))),
    ),
    ("plivo", "sms"): (
        (68, Outcome("delivered", ("queued", "sent", "delivered"))),
        (12, Outcome("undelivered", ("queued", "sent", "undelivered"), ("30", "70", "80"))),
        (8, Outcome("failed", ("queued", "failed"), ("20", "50", "90", "200"))),
        (8, Outcome("no receipt", ("queued", "sent"))),
    ),
}
CHANNELS = {("twilio", "sms"): 58, ("twilio", "whatsapp"): 17, ("vonage", "sms"): 13}
CHANNELS |= {("plivo", "sms"): 12}
#: Seconds between a step and the one before it: (low, high).
DELAYS = {"queued": (0, 1), "accepted": (1, 5), "sent": (1, 4), "buffered": (2, 60)}
DELAYS |= {"delivered": (2, 45), "read": (30, 7200), "undelivered": (5, 300)}
DELAYS |= {"failed": (1, 30), "rejected": (1, 5), "expired": (72 * 3600, 72 * 3600 + 60)}
#: The first messages show every case even when only a few are seeded:
#: (provider, channel, outcome, duplicate, out of order, callback before the send returned).
SHOWCASE = (
    ("twilio", "sms", "delivered", True, False, False),
    ("twilio", "sms", "delivered", False, True, False),
    ("twilio", "whatsapp", "read", False, False, True),
    ("twilio", "sms", "undelivered", False, False, False),
    ("vonage", "sms", "expired", False, False, False),
    ("twilio", "sms", "unmapped", False, False, False),
    ("plivo", "sms", "delivered", True, True, False),
)


def _weighted(rng: random.Random, table):
    keys = list(table)
    return rng.choices(keys, weights=[table[k] for k in keys])[0]


@dataclass
class Plan:
    """Everything about one demo message that does not depend on when the command runs."""

    provider: str
    channel: str
    message_id: str
    to: str  #: E.164
    sender: str  #: the identity the send call used (may be a Messaging Service)
    sent_from: str  #: what the callbacks report as ``From``
    template_key: str
    product_reference: str
    segments: int
    age: timedelta  #: how long before the first run the message was sent
    steps: list[tuple[str, str, int]]  #: (raw status, error code, seconds after the send)
    duplicate: bool
    out_of_order: bool
    early: bool

    def events(self, sent_at: datetime) -> list[NormalizedEvent]:
        """The callbacks in the order they arrive (reordered and repeated as planned)."""
        build = {"twilio": _twilio_event, "vonage": _vonage_event, "plivo": _plivo_event}
        events = [
            build[self.provider](self, raw, code, sent_at + timedelta(seconds=offset), n)
            for n, (raw, code, offset) in enumerate(self.steps, start=1)
        ]
        if self.out_of_order and len(events) > 1:
            events[-2], events[-1] = events[-1], events[-2]  # e.g. ``sent`` after ``delivered``
        if self.duplicate:
            events.append(events[-1])  # the provider sends the same callback again
        return events


class Generator:
    """Draws the plans, in index order, from one ``random.Random(seed)``."""

    def __init__(self, seed: int, days: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self.span = days * 86400
        self.recipients: list[tuple[str, str]] = []

    def message_id(self, provider: str, index: int) -> str:
        digest = hashlib.sha256(f"sms_delivery_seed:{self.seed}:{index}".encode()).hexdigest()
        if provider == "twilio":
            return "SM" + digest[:32]
        if provider == "vonage":
            return digest[:16].upper()
        return str(uuid.UUID(digest[:32]))  # Plivo MessageUUID

    def number(self, region: str) -> str:
        """A valid mobile number of ``region``: its example number, last digits varied."""
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        for _ in range(10):
            national = example.national_number // 10_000 * 10_000 + self.rng.randrange(10_000)
            number = phonenumbers.PhoneNumber(
                country_code=example.country_code, national_number=national
            )
            if phonenumbers.is_valid_number(number):
                example = number
                break
        return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)

    def plan(self, index: int) -> Plan:
        rng = self.rng
        provider, channel = _weighted(rng, CHANNELS)
        outcomes = {outcome: weight for weight, outcome in OUTCOMES[provider, channel]}
        outcome = _weighted(rng, outcomes)
        duplicate, out_of_order, early = (rng.random() < p for p in (0.12, 0.12, 0.05))
        if index < len(SHOWCASE):
            provider, channel, name, duplicate, out_of_order, early = SHOWCASE[index]
            outcome = next(o for _, o in OUTCOMES[provider, channel] if o.name == name)
        if self.recipients and rng.random() < 0.25:  # people get several messages
            country, to = rng.choice(self.recipients)
        else:
            country = _weighted(rng, COUNTRIES)
            to = self.number(country)
            self.recipients.append((country, to))
        template = _weighted(rng, {key: weight for key, (_, weight) in TEMPLATES.items()})
        long_code = rng.choice(LONG_CODES)
        if channel == "whatsapp":
            sender = sent_from = WHATSAPP_SENDER
        elif provider == "twilio":
            local = SHORT_CODE if country == "US" else long_code
            if country in ALPHANUMERIC_COUNTRIES:
                local = ALPHANUMERIC
            sender = rng.choice((long_code, MESSAGING_SERVICE, local))
            sent_from = long_code if sender == MESSAGING_SERVICE else sender
        else:
            alpha = country in ALPHANUMERIC_COUNTRIES and rng.random() < 0.6
            sender = sent_from = ALPHANUMERIC if alpha else OTHER_LONG_CODES[provider]
        steps = list(outcome.steps)
        if sender == MESSAGING_SERVICE:
            steps.insert(0, "queued")  # Twilio calls back on accepted -> queued for services
        code = rng.choice(outcome.errors) if outcome.errors else ""
        offset, timeline = 0, []
        for n, raw in enumerate(steps, start=1):
            low, high = DELAYS.get(raw, (10, 600))
            offset += rng.randint(low, high)
            timeline.append((raw, code if n == len(steps) else "", offset))
        age = rng.random() * self.span
        return Plan(
            provider=provider,
            channel=channel,
            message_id=self.message_id(provider, index),
            to=to,
            sender=sender,
            sent_from=sent_from,
            template_key=template,
            product_reference=f"{TEMPLATES[template][0]}:{rng.randrange(1000, 100_000)}",
            segments=rng.choice((1, 1, 2)) if template.endswith(("shipped", "reminder")) else 1,
            # Every callback lies in the past, even Vonage's expiry 72 h after the send.
            age=timedelta(seconds=max(int(age), offset + 60)),
            steps=timeline,
            duplicate=duplicate,
            out_of_order=out_of_order,
            early=early,
        )


def _twilio_event(plan: Plan, raw: str, code: str, at: datetime, n: int) -> NormalizedEvent:
    # Field set of Twilio's status callbacks (../shared/providers.md §1.2, §1.3).
    to = f"whatsapp:{plan.to}" if plan.channel == "whatsapp" else plan.to
    payload = {"AccountSid": DEMO_ACCOUNT_SID, "ApiVersion": "2010-04-01", "From": plan.sent_from}
    payload |= {"MessageSid": plan.message_id, "MessageStatus": raw, "To": to}
    payload |= {"SmsSid": plan.message_id, "SmsStatus": raw}
    if plan.sender == MESSAGING_SERVICE:
        payload["MessagingServiceSid"] = MESSAGING_SERVICE
    if code:
        payload["ErrorCode"] = code
    if plan.channel == "whatsapp":
        payload |= {"ChannelPrefix": "whatsapp", "ChannelToAddress": plan.to}
        payload["ChannelInstallSid"] = DEMO_CHANNEL_SID
        if raw == "read":
            payload["EventType"] = "READ"
    elif raw in ("delivered", "undelivered"):
        payload["RawDlrDoneDate"] = at.strftime("%y%m%d%H%M")
    return NormalizedEvent(
        provider="twilio",
        provider_message_id=plan.message_id,
        raw_status=raw,
        status=TWILIO.map_status(raw),
        provider_occurred_at=at,
        error_code=code,
        error_category=TWILIO.errors.category(code),
        recipient=to,
        sender_identity=plan.sent_from,
        segments=plan.segments,
        raw_payload=payload,
    )


def _vonage_event(plan: Plan, raw: str, code: str, at: datetime, n: int) -> NormalizedEvent:
    # SMS API delivery receipt (../shared/providers.md §2.1); ``to`` is the *sender* there.
    pushed = at + timedelta(seconds=1)
    payload = {"msisdn": plan.to.lstrip("+"), "to": plan.sent_from.lstrip("+")}
    payload |= {"messageId": plan.message_id, "price": "0.03330000", "status": raw}
    payload |= {"scts": at.strftime("%y%m%d%H%M"), "err-code": code or "0"}
    payload |= {"message-timestamp": f"{pushed:%Y-%m-%d %H:%M:%S}"}
    payload["client-ref"] = plan.product_reference[:40]
    return NormalizedEvent(
        provider="vonage",
        provider_message_id=plan.message_id,
        raw_status=raw,
        status=VONAGE_STATUSES.get(raw, Status.UNKNOWN),
        provider_occurred_at=at,
        error_code=code,
        error_category=VONAGE_ERRORS.get(code, ErrorCategory.UNKNOWN) if code else "",
        recipient=plan.to,
        sender_identity=plan.sent_from,
        segments=plan.segments,
        raw_payload=payload,
    )


def _plivo_event(plan: Plan, raw: str, code: str, at: datetime, n: int) -> NormalizedEvent:
    # Status callback fields (../shared/providers.md §3); ``Sequence`` orders one message's.
    when = f"{at:%Y-%m-%d %H:%M:%S.%f}"
    payload = {"From": plan.sent_from.lstrip("+"), "To": plan.to.lstrip("+"), "Type": "sms"}
    payload |= {"Status": raw, "MessageUUID": plan.message_id}
    payload |= {"ParentMessageUUID": plan.message_id, "PartInfo": f"1 of {plan.segments}"}
    payload |= {"Units": str(plan.segments), "TotalRate": "0.00500"}
    payload |= {"TotalAmount": f"{0.005 * plan.segments:.5f}", "ErrorCode": code}
    payload |= {"Sequence": str(n), "MessageTime": when}
    time_field = {"queued": "QueuedTime", "sent": "SentTime"}.get(raw, "DeliveryReportTime")
    payload[time_field] = when
    return NormalizedEvent(
        provider="plivo",
        provider_message_id=plan.message_id,
        raw_status=raw,
        status=PLIVO_STATUSES.get(raw, Status.UNKNOWN),
        provider_occurred_at=at,
        error_code=code,
        error_category=PLIVO_ERRORS.get(code, ErrorCategory.UNKNOWN) if code else "",
        recipient=plan.to,
        sender_identity=plan.sent_from,
        segments=plan.segments,
        raw_payload=payload,
        dedupe_parts=(str(n),),
    )


class Command(BaseCommand):
    help = (
        "Create demo messages with full delivery timelines through the ingest service. "
        "Deterministic for a given --seed; running it again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--messages", type=int, default=200, help="How many (default 200).")
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument(
            "--days", type=int, default=14, help="Spread sends over the last D days (default 14)."
        )
        parser.add_argument(
            "--batch-size", type=int, default=50, help="Messages per ingest() call (default 50)."
        )

    def handle(self, *args, messages, seed, days, batch_size, **options):
        if messages < 0 or days < 1 or batch_size < 1:
            raise CommandError("--messages must be >= 0, --days and --batch-size >= 1.")
        self.stdout.write(f"Seeding {messages} demo messages (seed {seed}, last {days} days)…")
        started = time.monotonic()
        generator = Generator(seed, days)
        now = timezone.now().replace(microsecond=0)
        totals: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        for start in range(0, messages, batch_size):
            plans = [generator.plan(i) for i in range(start, min(start + batch_size, messages))]
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
                f"{totals['review']} need review."
            )
        )

    def seed_batch(self, plans: list[Plan], now: datetime, totals: Counter, statuses: Counter):
        """Send and call back one batch of messages in one transaction (two ingest() calls)."""
        ids = [plan.message_id for plan in plans]
        existing = dict(
            ((provider, message_id), created)
            for provider, message_id, created in Message.objects.filter(
                provider_message_id__in=ids
            ).values_list("provider", "provider_message_id", "created_at")
        )
        early, late, sent_at = [], [], {}
        for plan in plans:
            key = (plan.provider, plan.message_id)
            # A re-run anchors the timeline on the stored send time, so the events (and their
            # dedupe keys) come out identical.
            sent_at[key] = existing.get(key) or now - plan.age
            events = plan.events(sent_at[key])
            split = 1 if plan.early else 0  # callback that outran the send call's response
            early += events[:split]
            late += events[split:]
        created = []
        with transaction.atomic(using=router.db_for_write(Message)):
            results = [ingest(early)] if early else []
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
                if (plan.provider, plan.message_id) not in existing:
                    message.created_at = sent_at[plan.provider, plan.message_id]
                    created.append(message)
            results.append(ingest(late))
            # Demo data only: register_outbound and ingest stamp "now", so backdate the send
            # time and the receive times with bulk updates (no save(), no signal) to spread the
            # messages over --days as if their callbacks had arrived a few seconds after the fact.
            Message.objects.bulk_update(created, ["created_at"])
            new_events = MessageEvent.objects.filter(
                message__in=created, provider_occurred_at__isnull=False
            )
            new_events.update(received_at=F("provider_occurred_at") + RECEIPT_LAG)
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
