"""What the message page shows: the timeline rows, latencies and the suggested next step.

Kept apart from the admin so it can be tested without a browser. Everything here answers one of
seed 000's questions: when was it requested, which number and sender, what did the provider and
the carrier say, did anyone retry, and what should the customer do next?
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from delivery.error_codes import ErrorInfo
from delivery.lifecycle import FAILURE_STATUSES, Status
from delivery.models import Message, MessageEvent
from delivery.registry import error_info

from .display import duration, status_badge

#: How long a message may sit at "sent" before support should stop waiting for a receipt.
RECEIPT_PATIENCE = timedelta(hours=1)


@dataclass(frozen=True)
class Zone:
    """The zone the recipient's local times are shown in, and how sure we are of it."""

    name: str
    candidates: tuple[str, ...]  #: every zone the number's country allows
    overridden: bool  #: set on the message (or picked by the agent), not guessed

    @property
    def ambiguous(self) -> bool:
        return not self.overridden and len(self.candidates) > 1


def recipient_zone(message: Message, requested: str = "") -> Zone | None:
    """The zone the agent picked, else the message's override, else the number's first zone."""
    candidates = message.time_zones
    if requested and _is_zone(requested):
        return Zone(requested, candidates or (requested,), overridden=True)
    if not candidates:
        return None
    return Zone(candidates[0], candidates, overridden=bool(message.recipient_time_zone))


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class TimelineRow:
    event: MessageEvent
    since_previous: timedelta | None
    error: ErrorInfo | None

    @property
    def duplicate(self) -> bool:
        return self.event.duplicate_count > 0

    @property
    def badge(self) -> str:
        return status_badge(self.event.status)

    @property
    def since_previous_display(self) -> str:
        return duration(self.since_previous)


def timeline(message: Message) -> list[TimelineRow]:
    rows = []
    previous = message.created_at
    for event in MessageEvent.objects.timeline(message):
        rows.append(
            TimelineRow(
                event=event,
                since_previous=event.received_at - previous,
                error=error_info(message.provider, event.error_code),
            )
        )
        previous = event.received_at
    return rows


def latencies(message: Message) -> list[tuple[str, timedelta]]:
    """Requested → sent → delivered, from the summary's timestamps."""
    steps = []
    if message.first_sent_at:
        steps.append(("requested → sent", message.first_sent_at - message.created_at))
    if message.delivered_at:
        start = message.first_sent_at or message.created_at
        steps.append(("sent → delivered", message.delivered_at - start))
        steps.append(("requested → delivered", message.delivered_at - message.created_at))
    return steps


def next_step(message: Message, now: datetime | None = None) -> str:
    """What support should do or tell the customer, in one or two sentences."""
    now = now or timezone.now()
    status = message.current_status
    info = error_info(message.provider, message.error_code)
    if status in (Status.DELIVERED, Status.READ):
        return (
            "The carrier confirmed delivery to the phone. Ask the customer to look in their "
            "messages, including blocked senders or spam; a receipt proves the phone got it, not "
            "that someone saw it."
        )
    if status in FAILURE_STATUSES:
        if info:
            return info.next_step
        return "Delivery failed without an error code. Escalate to the provider with this id."
    if status == Status.UNKNOWN:
        return (
            "The provider reported a status this library does not know; it is in the review "
            "queue. Escalate to the provider with this id if the customer is waiting."
        )
    waited = now - (message.last_event_at or message.created_at)
    if status == Status.SENT and waited > RECEIPT_PATIENCE:
        return (
            "The carrier accepted the message but no delivery receipt came for over an hour; some "
            "networks never send one. Ask whether it arrived; if not, resend once or escalate "
            "with this id."
        )
    return (
        "Wait: the message is still on its way and the carrier may still be retrying. Receipts "
        "usually come within minutes."
    )


def related(message: Message, limit: int = 10):
    """Other messages for the same product action (resends), newest first."""
    if not message.product_reference:
        return Message.objects.none()
    return Message.objects.filter(product_reference=message.product_reference).exclude(
        pk=message.pk
    )[:limit]
