"""The ingest (normalization) service: store evidence, append events, update summaries.

Views, management commands and tests all go through :func:`ingest`. One call is one database
transaction: the raw request, every event (idempotent on a unique dedupe key) and every message
summary (under a row lock) are committed together or not at all, so a 2xx can be sent only for
what is durably stored and a failure leaves nothing half-written for the provider's retry. On
PostgreSQL a lone report is written by one statement, which is its own transaction
(:func:`_ingest_alone`); other requests take :func:`_ingest_together`.

Input the database would refuse never reaches it (:mod:`delivery.storable`); what is unreadable
raises :class:`~delivery.exceptions.MalformedPayload` so the caller keeps the raw request for
review (:func:`store_unparsed`) instead of answering 5xx for a request no retry can fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.db import (
    DataError,
    IntegrityError,
    OperationalError,
    connections,
    router,
    transaction,
)
from django.utils import timezone

from . import metrics, statements, storable, suppression
from .conf import app_settings
from .events import ConsentChange, Event, InboundEvent, NormalizedEvent
from .exceptions import InvalidNumber, MalformedPayload
from .lifecycle import PRECEDENCE, ErrorCategory, Status, precedence_key, supersedes
from .masking import mask_text
from .models import InboundMessage, Message, MessageEvent, RawWebhook, Suppression
from .recipients import protect, recipient_hash, to_e164
from .signals import consent_changed, message_status_changed

#: Reports that prove the message left the provider, and ones that prove it arrived.
_IMPLIES_SENT = frozenset(
    {Status.SENT, Status.DELIVERED, Status.READ, Status.UNDELIVERED, Status.EXPIRED}
)
_IMPLIES_DELIVERED = frozenset({Status.DELIVERED, Status.READ})
#: For the statement that compares keys: an array literal (``text[]``), which psycopg sends
#: as it is; a list would be adapted element by element on every call.
_PRECEDENCE = "{" + ",".join(f'"{status}"' for status in PRECEDENCE) + "}"


@dataclass(frozen=True, slots=True)
class RawRequest:
    """A provider's HTTP request as received, before anything interpreted it."""

    provider: str
    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    content_type: str = ""
    account: str = ""
    signature_valid: bool | None = True

    def columns(self, parse_error: str = "") -> dict[str, Any]:
        """The row that keeps this request, by field: readable parts fitted, the exact
        request sealed."""

        def length(name: str) -> int:
            return storable.column_length(RawWebhook, name)

        return {
            "provider": storable.text(self.provider, length("provider"), name="provider"),
            "account": storable.identifier(self.account, length("account"), name="account"),
            "method": storable.text(self.method, length("method"), name="method"),
            "content_type": storable.word(
                self.content_type, length("content_type"), name="content type"
            ),
            "signature_valid": self.signature_valid,
            "parse_error": storable.text(mask_text(parse_error), name="parse error"),
            **RawWebhook.seal(self.path, self.headers, self.body),
        }

    def record(self, parse_error: str = "") -> RawWebhook:
        """The row that keeps this request (not saved)."""
        return RawWebhook(**self.columns(parse_error))


@dataclass
class IngestResult:
    raw_webhook: RawWebhook | None = None
    applied: int = 0  #: events that changed a summary
    stored: int = 0  #: new events and inbound messages stored
    duplicates: int = 0  #: events we already had
    #: (message, previous status, new status, event) of each change receivers are told about
    transitions: list[tuple[Message, str, str, MessageEvent]] = field(default_factory=list)
    consent_changes: list[InboundMessage] = field(default_factory=list)  #: new STOP / START
    #: error-code opt-outs, recorded after every message of the request is locked
    opt_outs: list[Callable[[], None]] = field(default_factory=list)


def ingest(
    events: Sequence[Event], raw: RawRequest | None = None, *, stored: RawWebhook | None = None
) -> IngestResult:
    """Store ``raw`` and ``events``; update each message summary. Idempotent.

    ``stored``: the raw request is already stored (a replay reads it again); the events link to
    it and it is linked to the person they name.

    Delivery reports (NormalizedEvent) and messages people sent us (InboundEvent) may come in
    the same request (some providers use one URL for both). Signals go out after commit: once
    per real status transition, once per new opt-out / opt-in.

    Raises MalformedPayload, with nothing written, when an event is unreadable, when the
    database refuses a value, or when a provider event id already belongs to another message.
    """
    fitted = [
        storable.inbound(e) if isinstance(e, InboundEvent) else storable.event(e) for e in events
    ]
    using = router.db_for_write(Message)
    try:
        if raw is not None and _alone(fitted, using):
            result = _ingest_alone(fitted[0], raw, using)  # type: ignore[arg-type]
        else:
            result = _ingest_together(fitted, raw, stored, using)
    except (DataError, IntegrityError) as exc:
        # Not an outage: the same request would be refused again on every retry.
        raise MalformedPayload(f"The database refused a value ({type(exc).__name__}).") from exc
    _announce(result, fitted, using)
    return result


def _ingest_together(
    fitted: Sequence[Event], raw: RawRequest | None, stored: RawWebhook | None, using: str
) -> IngestResult:
    """Any request, in one transaction: its messages locked in one order, one by one."""
    result = IngestResult()
    with transaction.atomic(using=using):
        if raw is not None:
            # Inserted when the first event needs it, linked to that event's person as
            # its message knows them: no number is parsed again for a known message.
            result.raw_webhook = raw.record()
        elif stored is not None:
            result.raw_webhook = stored
            if not stored.recipient_hash and (person := _person_of(fitted)):
                stored.recipient_hash = person
                stored.save(using=using, update_fields=["recipient_hash"])
        whom = partial(_person_of, fitted)
        # Reports in (provider, message id) order: two requests naming the same messages
        # lock them in the same order, never in two (a deadlock). The summary rule does not
        # depend on the order; a message's own reports keep theirs (a stable sort).
        for event in sorted(fitted, key=lock_order):
            if isinstance(event, InboundEvent):
                _ingest_inbound(event, result, using)
            else:
                _ingest_one(event, result, using, whom)
        for opt_out in result.opt_outs:
            opt_out()
        _store_raw(result, using, whom)  # only duplicates, or no event at all
    return result


def _announce(result: IngestResult, fitted: Sequence[Event], using: str) -> None:
    """Tell receivers and the metrics about ``result`` once it is committed."""
    if result.duplicates and fitted:
        # For the duplicates alert and the metrics; a cache call, only when there are some.
        provider = fitted[0].provider
        transaction.on_commit(partial(metrics.count, "duplicate", provider, result.duplicates))
    # send_robust: a receiver that fails must not undo the answer for what is already stored
    # (without a transaction around ingest(), on_commit runs these right here); Django logs
    # the receiver's exception (django.dispatch) and the other receivers still run.
    counting = bool(app_settings.METRICS_TOKEN)  # the Prometheus endpoint's, only when it is on
    for message, previous, status, record in result.transitions:
        if counting:
            count = partial(metrics.count, f"transition_{status}", message.provider)
            transaction.on_commit(count, using=using)
        announce = partial(
            message_status_changed.send_robust,
            sender=Message,
            message=message,
            previous_status=previous,
            status=status,
            event=record,
        )
        transaction.on_commit(announce, using=using)
    for inbound in result.consent_changes:
        announce = partial(
            consent_changed.send_robust,
            sender=InboundMessage,
            inbound=inbound,
            opted_out=inbound.consent == ConsentChange.OPT_OUT,
        )
        transaction.on_commit(announce, using=using)


def lock_order(event: Event) -> tuple[str, str]:
    """The order reports lock their messages in: (provider, message id), inbound first."""
    if isinstance(event, InboundEvent):
        return ("", "")  # locks no message: first, as they came
    return (event.provider, event.provider_message_id)


def _store_raw(result: IngestResult, using: str, person: Callable[[], str]) -> None:
    """Insert the raw request, linked to ``person()``, unless it is stored already."""
    raw = result.raw_webhook
    if raw is not None and raw.pk is None:
        raw.recipient_hash = person()
        statements.insert(raw, using)


def _person_of(events: Sequence[Event]) -> str:
    """The keyed hash of the number a request is about (its first recipient or sender), "" if
    none: what lets an erasure find the request without decrypting every stored one."""
    for event in events:
        number = event.sender if isinstance(event, InboundEvent) else event.recipient
        e164 = to_e164(number) if number else None
        if e164:
            return recipient_hash(e164)
    return ""


def _ingest_inbound(event: InboundEvent, result: IngestResult, using: str) -> None:
    """Store one inbound message unless we have it already (provider + message id)."""
    record = InboundMessage(
        provider=event.provider,
        provider_message_id=event.provider_message_id,
        our_identity=event.our_identity,
        keyword=event.keyword,
        consent=event.consent,
    )
    record.set_sender(event.sender)
    _store_raw(result, using, lambda: record.sender_hash)
    record.raw_webhook = result.raw_webhook
    record.pk = statements.insert_unless_duplicate(
        record, using, conflict=("provider", "provider_message_id")
    )
    if record.pk is None:
        result.duplicates += 1
        return
    result.stored += 1
    if record.consent == ConsentChange.OPT_OUT:
        suppression.suppress(
            record.sender_hash,
            scope=record.our_identity,
            source=Suppression.Source.KEYWORD,
            reason=record.keyword,
            provider=record.provider,
        )
    elif record.consent == ConsentChange.OPT_IN:
        suppression.lift(
            record.sender_hash, scope=record.our_identity, reason=f"texted {record.keyword}"
        )
    if record.consent in (ConsentChange.OPT_OUT, ConsentChange.OPT_IN):
        result.consent_changes.append(record)


def store_unparsed(raw: RawRequest, error: str) -> RawWebhook:
    """Keep a verified request we could not read, for review (it never becomes an event)."""
    record = raw.record(parse_error=error or "Unreadable request.")
    record.save(using=router.db_for_write(RawWebhook))
    return record


def register_outbound(
    *,
    provider: str,
    provider_message_id: str,
    to: str = "",
    sender_identity: str = "",
    template_key: str = "",
    product_reference: str = "",
    segments: int | None = None,
) -> Message:
    """Record a message right after the provider accepted the send request.

    Safe to call after callbacks for the message already arrived (they may outrun the send
    call's response): it fills in what the callbacks did not know and keeps their status.
    ``to`` may be in any common format; without a country code it is read in
    ``SMS_DELIVERY["DEFAULT_REGION"]``. Raises InvalidNumber, recording nothing, when it cannot
    be read as a phone number.
    """
    e164 = to_e164(to, app_settings.DEFAULT_REGION) if to else None
    if to and not e164:
        raise InvalidNumber(
            "register_outbound(to=...) is not a phone number"
            + (
                ""
                if app_settings.DEFAULT_REGION
                else " (without a country code, set DEFAULT_REGION)"
            )
            + "."
        )
    using = router.db_for_write(Message)
    with transaction.atomic(using=using):
        message = statements.lock_or_create_message(provider, provider_message_id, using)
        if not message.registered_at:
            message.registered_at = timezone.now()
        if e164:
            message.set_recipient(e164)
        for name, value in [
            ("sender_identity", sender_identity),
            ("template_key", template_key),
            ("product_reference", product_reference),
            ("segments", segments),
        ]:
            if value:
                setattr(message, name, value)
        message.save(using=using)
    return message


def _ingest_one(
    event: NormalizedEvent, result: IngestResult, using: str, person: Callable[[], str]
) -> None:
    """Store one report and fold it into its message. ``person``: whom the request is about
    when its message does not know yet."""
    now = timezone.now()
    key = event.dedupe_key
    # The message is locked first, events inserted after: inserting an event share-locks its
    # message row (foreign key), so locking afterwards could deadlock with a concurrent
    # delivery doing the same. A redelivery (a provider's retry) is counted in the same
    # statement, and the request stored by it when its message knows the person.
    raw = result.raw_webhook
    message, duplicate = statements.lock_message(
        event.provider,
        event.provider_message_id,
        using,
        count_key=key,
        now=now,
        raw=raw if raw is not None and raw.pk is None else None,
    )
    if duplicate and message is not None:
        result.duplicates += 1
        if person_known := message.recipient_hash:  # linked to its person without parsing
            _store_raw(result, using, lambda: person_known)
        return
    created = message is None
    if message is None:
        message = Message(provider=event.provider, provider_message_id=event.provider_message_id)
    # The number is parsed and encrypted once per message, by the first report that names it.
    located = bool(not message.recipient_hash and event.recipient and _locate(message, event))
    new_key = precedence_key(event.status, event.provider_occurred_at, event.error_code, key)
    applies = supersedes(new_key, message.summary_key())
    previous = str(message.current_status)  # text, as read from the row (not the enum default)
    changed = _fold_into_summary(message, event, key, applies, now)
    if created and not statements.insert_unless_duplicate(
        message, using, conflict=("provider", "provider_message_id")
    ):
        # A concurrent report created the message first (the insert waited for its commit):
        # start again with its row, locked.
        _ingest_one(event, result, using, person)
        return
    # A new message is inserted with its summary decided: one row version, not two.
    _store_raw(result, using, lambda: message.recipient_hash or person())
    record = _event_record(event, key, now)
    record.message, record.raw_webhook, record.applied = message, result.raw_webhook, applies
    _, owner, is_new = statements.insert_event(record, using)
    if owner != message.pk:
        # Nothing is written: the transaction rolls back, with the message row it may have
        # created.
        raise _key_taken(event, key)
    if not is_new:  # stored under its key since the lock: a concurrent delivery of it
        result.duplicates += 1
        return
    result.stored += 1
    if event.error_category == ErrorCategory.OPT_OUT:
        # Recorded once every message of the request is locked: a person's suppression row
        # taken between two message locks could close a circle with a request locking them
        # the other way round.
        result.opt_outs.append(
            partial(
                suppression.suppress,
                message.recipient_hash,
                scope=message.sender_identity or event.sender_identity,
                source=Suppression.Source.ERROR_CODE,
                reason=f"{event.provider} error {event.error_code}",
                provider=event.provider,
            )
        )
    if not created:
        if located:
            changed |= {"recipient_hash", "recipient_encrypted", "destination_country"}
        statements.update(message, changed, using)
    if applies:
        _applied(result, message, previous, record)


def _event_record(event: NormalizedEvent, key: str, now: datetime) -> MessageEvent:
    """The row that stores ``event`` (not saved; its message, request and ``applied`` not
    set)."""
    return MessageEvent(
        provider_event_id=event.provider_event_id,
        dedupe_key=key,
        status=event.status,
        raw_status=event.raw_status,
        error_code=event.error_code,
        error_category=event.error_category,
        error_detail=event.error_detail,
        provider_occurred_at=event.provider_occurred_at,
        payload_encrypted=storable.sealed_payload(event.raw_payload),
        received_at=now,
        source=event.source,
    )


def _key_taken(event: NormalizedEvent, key: str) -> MalformedPayload:
    """The provider's event id names an event of another message: merging would file this
    report under the wrong message. The request goes to the review queue."""
    return MalformedPayload(
        f"Event {event.provider_event_id or key} is already recorded for another "
        "message; kept for review."
    )


def _applied(result: IngestResult, message: Message, previous: str, record: MessageEvent) -> None:
    """Count an event that decided ``message``'s summary, and the transition receivers are
    told about when the status changed from ``previous``."""
    result.applied += 1
    # Receivers see known statuses only. Every message starts "accepted" (registered after
    # the provider accepted it, or created by a report about it); "unknown" flags review and
    # holds the summary only while no known report exists, so leaving it is a change from
    # "accepted".
    before = Status.ACCEPTED if previous == Status.UNKNOWN else previous
    if message.current_status not in (before, Status.UNKNOWN):
        result.transitions.append((message, before, message.current_status, record))


def _alone(fitted: Sequence[Event], using: str) -> bool:
    """Whether the request is a lone report :func:`_ingest_alone` applies: the webhook's usual
    request, on PostgreSQL. Several reports, an inbound message or an opt-out (a suppression
    recorded under the message's lock) take a transaction."""
    return (
        len(fitted) == 1
        and isinstance(fitted[0], NormalizedEvent)
        and fitted[0].error_category != ErrorCategory.OPT_OUT
        and connections[using].vendor == "postgresql"
    )


#: Statements a lone report may take: a race costs one or two more (see _report_alone).
_ATTEMPTS = 8

#: The number a report names, read: (hash, encrypted, country or None); empty if unreadable.
Person = tuple[str, str, str | None]


def _ingest_alone(event: NormalizedEvent, raw: RawRequest, using: str) -> IngestResult:
    """One report in one statement, two when its message is new (:func:`statements.apply_report`,
    :func:`statements.insert_report_of_new_message`), each its own transaction. Inside a
    caller's transaction a savepoint keeps a refused statement from breaking it."""
    record = raw.record()
    result = IngestResult(raw_webhook=record)
    if connections[using].in_atomic_block:
        with transaction.atomic(using=using):
            _report_alone(event, record, result, using)
    else:
        _report_alone(event, record, result, using)
    return result


def _report_alone(
    event: NormalizedEvent, raw: RawWebhook, result: IngestResult, using: str
) -> None:
    """Store ``event`` with its request ``raw``, statement by statement until one wrote it
    (each one that did not wrote nothing): a statement that finds no message is followed by
    the one that creates it, one that finds a message without a number by one that has the
    report's read, one that meets an event a concurrent transaction committed by one that
    sees it."""
    now = timezone.now()
    key = event.dedupe_key
    record = _event_record(event, key, now)
    person: Person | None = None  # the report's number is read only if its message has none
    for _ in range(_ATTEMPTS):
        fold = _fold_parameters(event, key, now, person)
        reported = statements.apply_report(record, raw, fold, using)
        if reported is None:  # a message we did not know
            message = Message(
                provider=event.provider, provider_message_id=event.provider_message_id
            )
            if event.recipient:
                _locate(message, event)
            _fold_into_summary(message, event, key, True, now)
            raw.recipient_hash, record.applied = message.recipient_hash, True
            created, taken = statements.insert_report_of_new_message(message, record, raw, using)
            if taken:
                raise _key_taken(event, key)
            if created:
                result.stored += 1
                _applied(result, message, Status.ACCEPTED, record)
                return
            continue  # a concurrent report created it first: apply this one to it
        if not reported.ready:  # the message has no number yet: read the report's
            person = _person(event.recipient)
        elif reported.key_taken:
            raise _key_taken(event, key)
        elif reported.counted:
            result.duplicates += 1
            return
        elif reported.message is not None:
            result.stored += 1
            if reported.applies:
                _applied(result, reported.message, reported.previous, record)
            return
        # else: stored under its key by a transaction that committed after the statement
        # began, invisible to it: the next statement sees it.
    # Each statement that wrote nothing saw another transaction's commit: this many in a row
    # is not a race but a fault. Nothing is written; the provider retries a 503.
    raise OperationalError(f"A report was not stored after {_ATTEMPTS} statements.")


def _person(number: str) -> Person:
    protected = protect(number)
    if not protected:
        return "", "", None
    return protected.hash, protected.encrypted, protected.country or None


def _fold_parameters(
    event: NormalizedEvent, key: str, now: datetime, person: Person | None
) -> dict[str, object]:
    """:func:`_fold_into_summary`'s rule for ``event`` as :func:`statements.apply_report`'s
    parameters (``person``: the report's number, read; None: not read yet)."""
    person_hash, person_encrypted, person_country = person or ("", "", None)
    return {
        "provider": event.provider,
        "message_id": event.provider_message_id,
        "precedence": _PRECEDENCE,
        "status": str(event.status),
        "occurred": event.provider_occurred_at,
        "code": event.error_code,
        "key": key,
        "category": event.error_category,
        "now": now,
        "when": event.provider_occurred_at or now,
        "implies_sent": event.status in _IMPLIES_SENT,
        "implies_delivered": event.status in _IMPLIES_DELIVERED,
        "unknown": event.status == Status.UNKNOWN,
        "sender": event.sender_identity or None,
        "country": event.destination_country or None,
        "segments": event.segments or None,
        "needs_person": bool(event.recipient) and person is None,
        "person_hash": person_hash,
        "person_encrypted": person_encrypted,
        "person_country": person_country,
    }


def _locate(message: Message, event: NormalizedEvent) -> bool:
    """Set the message's number from ``event``; whether it could be read."""
    message.set_recipient(event.recipient)
    return bool(message.recipient_hash)


def _fold_into_summary(
    message: Message, event: NormalizedEvent, key: str, applies: bool, now: datetime
) -> set[str]:
    """Update ``message`` with a newly stored event (the caller holds the row lock); the names
    of the fields that changed."""
    changed: dict[str, object] = {"last_event_at": now, "updated_at": now}
    when = event.provider_occurred_at or now
    if event.status in _IMPLIES_SENT and (
        not message.first_sent_at or when < message.first_sent_at
    ):
        changed["first_sent_at"] = when
    if event.status in _IMPLIES_DELIVERED and (
        not message.delivered_at or when < message.delivered_at
    ):
        changed["delivered_at"] = when
    if event.status == Status.UNKNOWN and not message.needs_review:
        changed["needs_review"] = True
    for name in ("sender_identity", "destination_country", "segments"):
        value = getattr(event, name)
        if value and not (changed.get(name) or getattr(message, name)):
            changed[name] = value
    if applies:
        changed.update(
            current_status=event.status,
            status_occurred_at=event.provider_occurred_at,
            status_event_key=key,
            error_code=event.error_code,
            error_category=event.error_category,
        )
    for name, value in changed.items():
        setattr(message, name, value)
    return set(changed)
