"""Read stored raw requests again with the current adapters (``sms_delivery_replay``).

After a mapping fix (a status word the adapter did not know, a field it misread), replaying the
requests brings the records up to date without waiting for new callbacks:

- a report the adapter now reads differently (``unknown`` → ``delivered``) is appended as a new
  event with source ``replay``, next to the original (events are never edited), and the summary
  follows the usual precedence rule, signals included;
- a request kept in the review queue because it could not be read becomes events, and leaves the
  queue;
- a report read the same way as before changes nothing, so replaying twice is a no-op;
- a request whose signature was never checked (accepted with verification skipped, development
  only) is refused: replay would give it the standing of a verified callback.

Signatures are not checked again: they were checked when the request arrived, and the secrets or
the timestamps' freshness may since have changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import router, transaction
from django.db.models import Exists, OuterRef

from . import storable
from .events import Event, EventSource, InboundEvent, NormalizedEvent
from .exceptions import ConfigurationError, MalformedPayload
from .ingest import ingest
from .lifecycle import Status
from .masking import mask_text
from .models import InboundMessage, Message, MessageEvent, RawWebhook
from .stored import Unopenable, open_stored


class State:
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    READ = "read now"  #: was in the review queue, is read now
    UNREADABLE = "still unreadable"
    REFUSED = "refused"


@dataclass
class Outcome:
    raw_id: int
    state: str
    #: What changed (or would), one line per report: "msg_… unknown → delivered".
    changes: list[str] = field(default_factory=list)
    reason: str = ""  #: why refused or unreadable


def replay(raw: RawWebhook, *, dry_run: bool = False) -> Outcome:
    """Read ``raw`` again; store what the current adapter reads differently (unless dry_run)."""
    outcome = Outcome(raw.pk, State.UNCHANGED)
    if raw.signature_valid is not True:
        return _refused(outcome, "its signature was never checked (verification was skipped)")
    try:
        stored_request = open_stored(raw)
    except (Unopenable, ConfigurationError) as exc:
        return _refused(outcome, str(exc))
    try:
        events = stored_request.parse()
    except MalformedPayload as exc:
        return _unreadable(outcome, str(exc.detail))
    except Exception as exc:  # noqa: BLE001 - as in the webhook view: unreadable, never a crash
        return _unreadable(outcome, f"Unreadable request ({type(exc).__name__}).")
    try:
        # Fitted as ingest fits them, so their keys are the keys stored.
        fitted = [
            storable.inbound(e) if isinstance(e, InboundEvent) else storable.event(e)
            for e in events
        ]
    except MalformedPayload as exc:
        return _unreadable(outcome, str(exc.detail))
    to_store = [event for event in map(_what_to_store, fitted) if event is not None]
    was_unreadable = bool(raw.parse_error)
    outcome.changes = [_describe(event) for event in to_store]
    if was_unreadable:
        outcome.state = State.READ
    elif to_store:
        outcome.state = State.CHANGED
    if dry_run or outcome.state == State.UNCHANGED:
        return outcome
    try:
        with transaction.atomic(using=router.db_for_write(RawWebhook)):
            ingest(to_store, stored=raw)
            if was_unreadable:
                raw.parse_error = ""
                raw.save(update_fields=["parse_error"])
            _settle_review(_messages_of(to_store))
    except MalformedPayload as exc:
        return _unreadable(outcome, str(exc.detail))
    return outcome


def replay_all(raws: Iterable[RawWebhook], *, dry_run: bool = False) -> list[Outcome]:
    return [replay(raw, dry_run=dry_run) for raw in raws]


def _refused(outcome: Outcome, reason: str) -> Outcome:
    outcome.state, outcome.reason = State.REFUSED, reason
    return outcome


def _unreadable(outcome: Outcome, reason: str) -> Outcome:
    outcome.state, outcome.reason = State.UNREADABLE, mask_text(reason)
    return outcome


def _what_to_store(event: Event) -> Event | None:
    """``event`` if it is new; its replay version if the adapter now reads it differently;
    None if it is stored as it reads now."""
    if isinstance(event, InboundEvent):
        known = InboundMessage.objects.filter(
            provider=event.provider, provider_message_id=event.provider_message_id
        )
        return None if known.exists() else event
    stored = MessageEvent.objects.filter(dedupe_key=event.dedupe_key).first()
    if stored is None:
        return event
    if (stored.status, stored.error_category) == (event.status, event.error_category):
        return None
    # A key of its own, naming the new reading: a later mapping change can add another.
    reading = f"as={event.status}/{event.error_category}"
    again = dataclasses.replace(
        event, source=EventSource.REPLAY, dedupe_parts=(*event.dedupe_parts, reading)
    )
    return None if MessageEvent.objects.filter(dedupe_key=again.dedupe_key).exists() else again


def _describe(event: Event) -> str:
    if isinstance(event, InboundEvent):
        return f"{event.provider} inbound {event.provider_message_id}: {event.keyword or 'text'}"
    message = Message.objects.filter(
        provider=event.provider, provider_message_id=event.provider_message_id
    ).first()
    name = message.public_id if message else f"{event.provider} {event.provider_message_id}"
    if event.source == EventSource.REPLAY:
        before = MessageEvent.objects.filter(
            message=message, raw_status=event.raw_status, source=EventSource.WEBHOOK
        ).first()
        was = before.status if before else "?"
        return f"{name}: “{event.raw_status}” read as {was} before, as {event.status} now"
    return f"{name}: new report “{event.raw_status}” → {event.status}"


def _messages_of(events: list[Event]) -> list[Message]:
    keys = {(e.provider, e.provider_message_id) for e in events if isinstance(e, NormalizedEvent)}
    return [
        m
        for m in Message.objects.filter(provider_message_id__in=[k[1] for k in keys])
        if (m.provider, m.provider_message_id) in keys
    ]


def _settle_review(messages: list[Message]) -> None:
    """A message leaves the review queue once each of its ``unknown`` reports has been read
    again as a known status."""
    for message in messages:
        reread = MessageEvent.objects.filter(
            message=message,
            raw_webhook=OuterRef("raw_webhook"),
            raw_status=OuterRef("raw_status"),
            source=EventSource.REPLAY,
        ).exclude(status=Status.UNKNOWN)
        unresolved = message.events.filter(status=Status.UNKNOWN).exclude(Exists(reread))
        needs_review = unresolved.exists()
        if needs_review != message.needs_review:
            Message.objects.filter(pk=message.pk).update(needs_review=needs_review)
