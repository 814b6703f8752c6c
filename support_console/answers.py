"""The seven questions of support (seed 000), answered for one message.

When was it requested? To which number, from which sender? What did the provider say, and the
carrier? Did we retry? What should the customer do next? Each answer is a sentence an agent can
read out or paste; what to tell the customer is kept apart from what support should do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from delivery.error_codes import ErrorInfo
from delivery.events import ConsentChange
from delivery.lifecycle import FAILURE_STATUSES, ErrorCategory, Status
from delivery.models import InboundMessage, Message, MessageEvent, Suppression
from delivery.recipients import identity_key
from delivery.registry import error_info
from delivery.suppression import active_for

from .display import duration

#: How long a message may sit at "sent" before support should stop waiting for a receipt.
RECEIPT_PATIENCE = timedelta(hours=1)

#: Statuses only a carrier's (or handset's) receipt can report.
CARRIER_STATUSES = frozenset({Status.DELIVERED, Status.READ, Status.UNDELIVERED, Status.EXPIRED})

#: What to tell the customer when a message failed, by why it failed.
CUSTOMER_STEP = {
    ErrorCategory.INVALID_NUMBER: (
        "Please check the phone number in your account, with its country code. If it is right, "
        "make sure your line can receive text messages, then ask for a new message."
    ),
    ErrorCategory.UNREACHABLE_HANDSET: (
        "Please make sure your phone is switched on and has signal (and is not roaming without "
        "texts), then ask for a new message."
    ),
    ErrorCategory.CARRIER_FILTERING: (
        "Your mobile network blocked our message. Please ask for a new one in a few minutes; if "
        "it is blocked again, your network can unblock messages from us, or choose another way "
        "to receive it."
    ),
    ErrorCategory.OPT_OUT: (
        "You asked us not to text you (you replied STOP). Reply START to the number our "
        "messages come from to receive them again, then ask for a new message."
    ),
    ErrorCategory.SENDER_NOT_REGISTERED: (
        "Nothing to do on your side: the problem is ours and we are fixing it. Please use "
        "another way to receive it for now."
    ),
    ErrorCategory.ACCOUNT_BILLING: (
        "Nothing to do on your side: the problem is ours and we are fixing it. Please use "
        "another way to receive it for now."
    ),
    ErrorCategory.PROVIDER_OUTAGE: (
        "Nothing to do on your side: our messaging provider had a problem. Please ask for a new "
        "message in a few minutes."
    ),
    ErrorCategory.CHANNEL_POLICY: (
        "Please send us a message on WhatsApp first (or reply to our last one), then ask for "
        "the message again."
    ),
}
CUSTOMER_STEP_UNKNOWN = (
    "Please ask for a new message in a few minutes; if it does not arrive, contact us again."
)


@dataclass(frozen=True)
class Retry:
    """Another message for the same product action, before or after this one."""

    message: Message
    after: timedelta  #: its creation minus this message's (negative: it came before)

    @property
    def when(self) -> str:
        label = duration(abs(self.after))
        return f"{label} later" if self.after >= timedelta(0) else f"{label} earlier"


@dataclass(frozen=True)
class Answers:
    requested: datetime | None  #: when the app recorded the send; None: never registered
    first_report: datetime | None  #: when the first report about it arrived
    provider_said: str
    carrier_said: str
    retries: list[Retry]
    retry_note: str  #: what the retries (or their absence) mean
    duplicates: int  #: reports the provider sent more than once
    customer_step: str
    support_step: str
    unknown: str  #: what "unknown" means for this message; "" when it is not unknown
    consent: InboundMessage | None  #: the person's opt-out or opt-in towards this sender
    suppressed: list[Suppression]  #: active entries of the suppression list for the person
    other_opt_outs: list[InboundMessage]  #: opt-outs from our other senders, still in force


def answer(message: Message, events: list[MessageEvent], now: datetime | None = None) -> Answers:
    now = now or timezone.now()
    info = error_info(message.provider, message.error_code)
    latest = {**InboundMessage.objects.consent_changes(message.recipient_hash)}
    consent = latest.pop(identity_key(message.sender_identity), None) if latest else None
    retries = [Retry(other, other.created_at - message.created_at) for other in _retries(message)]
    return Answers(
        requested=message.registered_at,
        first_report=events[0].received_at if events else None,
        provider_said=_provider_said(message, events),
        carrier_said=_carrier_said(message, info),
        retries=retries,
        retry_note=_retry_note(message, retries),
        duplicates=sum(event.duplicate_count for event in events),
        customer_step=_customer_step(message, info, consent, now),
        support_step=_support_step(message, info, now),
        unknown=_unknown(message, events),
        consent=consent,
        suppressed=list(active_for(message.recipient_hash)[:5]) if message.recipient_hash else [],
        other_opt_outs=[c for c in latest.values() if c.consent == ConsentChange.OPT_OUT],
    )


def _retries(message: Message, limit: int = 10) -> list[Message]:
    """The other sends of the same thing: its ``retry_of`` chain (both ways, at most ``limit``
    links each way) and the messages of the same product action."""
    chain: dict[int, Message] = {}
    root, hops = message, 0
    while root.retry_of is not None and hops < limit:
        root, hops = root.retry_of, hops + 1
        chain[root.pk] = root
    frontier = [root.pk]
    while frontier and len(chain) < 2 * limit:
        below = list(Message.objects.filter(retry_of__in=frontier)[:limit])
        chain.update((m.pk, m) for m in below)
        frontier = [m.pk for m in below]
    if message.product_reference:
        same = Message.objects.filter(product_reference=message.product_reference)
        chain.update((m.pk, m) for m in same.order_by("created_at", "id")[:limit])
    chain.pop(message.pk, None)
    return sorted(chain.values(), key=lambda m: (m.created_at, m.pk))


def _deciding(message: Message, events: list[MessageEvent]) -> MessageEvent | None:
    return next((e for e in events if e.dedupe_key == message.status_event_key), None)


def _provider_said(message: Message, events: list[MessageEvent]) -> str:
    if not events:
        return "Nothing yet: no report has come from the provider."
    deciding = _deciding(message, events) or events[-1]
    said = f"“{deciding.raw_status}”"
    if deciding.error_code:
        said += f" with error {deciding.error_code}"
    if deciding.error_detail:
        said += f" (“{deciding.error_detail}”)"
    count = len(events)
    return f"{said}: the report that decides its status ({count} report{'s' if count > 1 else ''} in all)."


def _carrier_said(message: Message, info: ErrorInfo | None) -> str:
    status = message.current_status
    if status in (Status.DELIVERED, Status.READ):
        when = message.delivered_at
        stamp = f" on {when:%Y-%m-%d %H:%M} UTC" if when else ""
        read = " The recipient opened it (read receipt)." if status == Status.READ else ""
        return f"Delivered to the phone{stamp}.{read}"
    if status in CARRIER_STATUSES:
        because = f": {info.title.lower()}" if info else ""
        return f"Not delivered{because}."
    if status in (Status.FAILED, Status.REJECTED):
        return "Nothing: the message was stopped before it reached the carrier."
    if status == Status.SENT:
        return "The carrier accepted it; no delivery receipt yet (some networks never send one)."
    if status == Status.UNKNOWN:
        return "Unknown: the report could not be read (see below)."
    return "Nothing yet: the message has not reached the carrier."


def _retry_note(message: Message, retries: list[Retry]) -> str:
    later = [r for r in retries if r.after >= timedelta(0)]
    if later:
        first = later[0]
        status = first.message.get_current_status_display().lower()
        more = f" ({len(later)} more sends in all)" if len(later) > 1 else ""
        return f"Yes: retried {first.when} as {first.message.public_id}, {status}{more}."
    if retries:
        return f"This message is itself a resend (of {retries[-1].message.public_id})."
    if not (message.product_reference or message.retry_of_id):
        return (
            "Cannot tell: the app linked this message to no other send (send_sms's retry_of, "
            "or a product_reference), so a resend cannot be found."
        )
    return "No: no other message was sent for the same thing."


def _customer_step(
    message: Message, info: ErrorInfo | None, consent: InboundMessage | None, now: datetime
) -> str:
    if consent and consent.consent == ConsentChange.OPT_OUT:
        return (
            f"You replied {consent.keyword or 'STOP'} to {consent.our_identity or 'our number'} "
            f"on {consent.received_at:%Y-%m-%d}, so our messages are blocked. Reply START to "
            "that number to receive them again."
        )
    status = message.current_status
    if status in (Status.DELIVERED, Status.READ):
        return (
            "The message reached your phone. Please look in your messages, including filtered, "
            "spam or blocked senders."
        )
    if status in FAILURE_STATUSES:
        return (
            CUSTOMER_STEP.get(info.category, CUSTOMER_STEP_UNKNOWN)
            if info
            else (CUSTOMER_STEP_UNKNOWN)
        )
    if status == Status.UNKNOWN:
        return "Please wait a few minutes while we check with our provider what happened."
    waited = now - (message.last_event_at or message.created_at)
    if status == Status.SENT and waited > RECEIPT_PATIENCE:
        return (
            "Your network has not confirmed delivery. Please check whether it arrived; if not, "
            "ask for a new message."
        )
    return "Please wait a minute or two: the message is on its way."


def _support_step(message: Message, info: ErrorInfo | None, now: datetime) -> str:
    status = message.current_status
    if status in (Status.DELIVERED, Status.READ):
        return (
            "The carrier confirmed delivery: a receipt proves the phone got it, not that someone "
            "saw it. If the customer cannot find it, check the number with them (revealing it "
            "needs a reason)."
        )
    if status in FAILURE_STATUSES:
        if info:
            return info.next_step
        return "Delivery failed without an error code. Escalate to the provider with this id."
    if status == Status.UNKNOWN:
        return (
            "Escalate to the provider with the provider message id if the customer is waiting; a "
            "developer can map the new status and replay the report (review queue)."
        )
    waited = now - (message.last_event_at or message.created_at)
    if status == Status.SENT and waited > RECEIPT_PATIENCE:
        return (
            "No delivery receipt for over an hour; some networks never send one. Resend once if "
            "the customer has nothing, or escalate with this id."
        )
    return "Wait: receipts usually come within minutes, and the carrier may still be retrying."


def _unknown(message: Message, events: list[MessageEvent]) -> str:
    """What an unmapped report means for this message ("" when it had none)."""
    words = sorted({e.raw_status for e in events if e.status == Status.UNKNOWN})
    if message.current_status != Status.UNKNOWN and not words:
        return ""
    said = ", ".join(f"“{w}”" for w in words) or "a report"
    meaning = f"{message.provider.capitalize()} reported {said}, a status this library does not "
    if message.current_status == Status.UNKNOWN:
        return meaning + (
            "map to its lifecycle yet, so it cannot say whether the message arrived. The report "
            "is kept and the message is in the review queue."
        )
    return meaning + (
        "map yet; the status shown comes from the reports it could read. The unmapped report is "
        "kept and the message is in the review queue."
    )
