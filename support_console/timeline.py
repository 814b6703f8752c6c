"""The message page's timeline: one row per provider report, and the latencies between stages.

Kept apart from the admin so it can be tested without a browser (the seven questions are
answered in :mod:`support_console.answers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from delivery.error_codes import ErrorInfo
from delivery.events import EventSource
from delivery.models import Message, MessageEvent
from delivery.registry import error_info

from .display import duration, status_badge


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

    @property
    def source_note(self) -> str:
        """How a report that did not come by webhook reached us."""
        return _SOURCE_NOTES.get(self.event.source, "")


_SOURCE_NOTES: dict[str, str] = {
    EventSource.POLL: "We asked the provider's API (reconciliation): its callback never came.",
    EventSource.REPLAY: "A stored request read again after a mapping fix; the row before it "
    "is the first reading.",
}


def timeline(message: Message, events: list[MessageEvent]) -> list[TimelineRow]:
    rows = []
    previous = message.registered_at or (events[0].received_at if events else None)
    for event in events:
        rows.append(
            TimelineRow(
                event=event,
                since_previous=event.received_at - previous if previous else None,
                error=error_info(message.provider, event.error_code),
            )
        )
        previous = event.received_at
    return rows


def latencies(message: Message) -> list[tuple[str, timedelta]]:
    """Requested → sent → delivered, from the summary's timestamps. Only a message the app
    registered has a request time."""
    steps = []
    requested = message.registered_at
    if requested and message.first_sent_at:
        steps.append(("requested → sent", message.first_sent_at - requested))
    if message.delivered_at:
        if message.first_sent_at:
            steps.append(("sent → delivered", message.delivered_at - message.first_sent_at))
        if requested:
            steps.append(("requested → delivered", message.delivered_at - requested))
    return steps
