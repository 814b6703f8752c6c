"""Realistic demo messages for ``sms_delivery_seed``: who, from where, through which provider,
and the timeline of provider reports each one gets. Pure planning; the command stores it."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from urllib.parse import urlencode

import phonenumbers
from django.http import QueryDict

from delivery.adapters import WebhookRequest
from delivery.events import NormalizedEvent
from delivery.exceptions import ConfigurationError, MalformedPayload
from delivery.ingest import RawRequest
from delivery.lifecycle import ErrorCategory, Status
from delivery.registry import provider_class

RECEIPT_LAG = timedelta(seconds=2)
#: When a provider sends a callback again (a retry), it comes this much after the first.
RETRY_LAG = timedelta(seconds=30)
#: One message in this many also gets a report without its message id (the review queue).
UNREADABLE_EVERY = 50


@cache
def _adapter(name: str):
    """The provider's adapter, for its status table and error catalogue (no settings read);
    None when its SDK (a pip extra) is not installed."""
    try:
        return provider_class(name)()
    except ConfigurationError:
        return None


def _map(provider: str, raw: str, code: str) -> tuple[Status, str]:
    """Canonical status and error category, as the provider's adapter maps them."""
    adapter = _adapter(provider)
    if adapter is None:  # SDK missing: the provider's word if it is canonical, else unknown
        status = Status(raw) if raw in Status.values else Status.UNKNOWN
        return status, ErrorCategory.UNKNOWN if code else ""
    return adapter.map_status(raw), adapter.errors.category(code)


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
    #: The provider also sent a report we cannot read (kept in the review queue).
    unreadable: bool = False

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
        if example is None or example.national_number is None:
            raise ValueError(f"phonenumbers has no example mobile number for {region}.")
        for _ in range(10):
            national = example.national_number // 10_000 * 10_000 + self.rng.randrange(10_000)
            number = phonenumbers.PhoneNumber(
                country_code=example.country_code, national_number=national
            )
            if phonenumbers.is_valid_number(number):
                example = number
                break
        return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)

    def degraded(self, index: int, country: str, hours: float) -> Plan:
        """A Twilio SMS to ``country`` in the last ``hours``, 60 % of them undelivered for
        carrier filtering (30007): the demo's degraded route, for the analytics page and the
        rate-drop alert."""
        rng = self.rng
        failing = rng.random() < 0.6
        raw, code = ("undelivered", "30007") if failing else ("delivered", "")
        sent_after, done_after = rng.randint(1, 4), rng.randint(5, 60)
        return Plan(
            provider="twilio",
            channel="sms",
            message_id=self.message_id("twilio", 10_000_000 + index),
            to=self.number(country),
            sender=LONG_CODES[0],
            sent_from=LONG_CODES[0],
            template_key="order_shipped",
            product_reference=f"order:{rng.randrange(1000, 100_000)}",
            segments=1,
            age=timedelta(seconds=max(rng.random() * hours * 3600, done_after + 60)),
            steps=[("sent", "", sent_after), (raw, code, done_after)],
            duplicate=False,
            out_of_order=False,
            early=False,
        )

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
            unreadable=index % UNREADABLE_EVERY == UNREADABLE_EVERY // 2,
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
    status, category = _map("twilio", raw, code)
    return NormalizedEvent(
        provider="twilio",
        provider_message_id=plan.message_id,
        raw_status=raw,
        status=status,
        provider_occurred_at=at,
        error_code=code,
        error_category=category,
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
    status, category = _map("vonage", raw, code)
    return NormalizedEvent(
        provider="vonage",
        provider_message_id=plan.message_id,
        raw_status=raw,
        status=status,
        provider_occurred_at=at,
        error_code=code,
        error_category=category,
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
    status, category = _map("plivo", raw, code)
    return NormalizedEvent(
        provider="plivo",
        provider_message_id=plan.message_id,
        raw_status=raw,
        status=status,
        provider_occurred_at=at,
        error_code=code,
        error_category=category,
        recipient=plan.to,
        sender_identity=plan.sent_from,
        segments=plan.segments,
        raw_payload=payload,
        dedupe_parts=(str(n),),
    )


#: How each provider calls its status URL: method, content type, User-Agent, account field.
_REQUESTS = {
    "twilio": ("application/x-www-form-urlencoded", "TwilioProxy/1.1", "AccountSid"),
    "vonage": ("application/json", "Vonage-Webhooks/1.0", ""),
    "plivo": ("application/x-www-form-urlencoded", "PlivoHTTP/1.0", ""),
}
#: The field naming the message, per provider: without it a report cannot be read.
_MESSAGE_ID_FIELDS = {"twilio": ("MessageSid", "SmsSid"), "vonage": ("messageId",)}
_MESSAGE_ID_FIELDS |= {"plivo": ("MessageUUID",)}


def raw_request(event: NormalizedEvent, payload: dict | None = None) -> RawRequest:
    """The HTTP request the provider would have made for ``event``.

    Seeded, not received: it carries no signature, and ``signature_valid`` is empty, which the
    console shows as "not checked" (as for requests accepted with verification skipped).
    """
    payload = event.raw_payload if payload is None else payload
    content_type, agent, account_field = _REQUESTS[event.provider]
    if content_type == "application/json":
        body = json.dumps(payload, separators=(",", ":")).encode()
    else:
        body = urlencode(payload).encode()
    return RawRequest(
        provider=event.provider,
        method="POST",
        path=f"/webhooks/{event.provider}/status/",
        body=body,
        headers={"Content-Type": content_type, "User-Agent": agent},
        content_type=content_type,
        account=str(payload.get(account_field, "")) if account_field else "",
        signature_valid=None,
    )


def unreadable_request(event: NormalizedEvent) -> tuple[RawRequest, str] | None:
    """``event``'s request without the message id, and the error its adapter gives for it
    (what the review queue keeps of an unreadable request); None if the adapter reads it."""
    payload = {
        k: v for k, v in event.raw_payload.items() if k not in _MESSAGE_ID_FIELDS[event.provider]
    }
    raw = raw_request(event, payload)
    adapter = _adapter(event.provider)
    if adapter is None:
        return None
    query = QueryDict(mutable=True)
    request = WebhookRequest(
        raw.method, f"https://example.com{raw.path}", raw.path, raw.body, raw.headers, query
    )
    try:
        adapter.parse(request)
    except MalformedPayload as exc:
        return raw, str(exc.detail)
    return None
