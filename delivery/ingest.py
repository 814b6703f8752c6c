"""The ingest (normalization) service: store evidence, append events, update summaries.

Views, management commands and tests all go through :func:`ingest`. One call is one database
transaction: the raw request, every event (idempotent on a unique dedupe key) and every message
summary (under a row lock) are committed together or not at all, so a 2xx can be sent only for
what is durably stored and a failure leaves nothing half-written for the provider's retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from .events import ConsentChange, InboundEvent, NormalizedEvent
from .lifecycle import Status, precedence_key, supersedes
from .models import InboundMessage, Message, MessageEvent, RawWebhook
from .signals import consent_changed, message_status_changed

#: Reports that prove the message left the provider, and ones that prove it arrived.
_IMPLIES_SENT = frozenset(
    {Status.SENT, Status.DELIVERED, Status.READ, Status.UNDELIVERED, Status.EXPIRED}
)
_IMPLIES_DELIVERED = frozenset({Status.DELIVERED, Status.READ})


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

    def record(self, parse_error: str = "") -> RawWebhook:
        return RawWebhook(
            provider=self.provider,
            account=self.account,
            method=self.method,
            path=self.path,
            content_type=self.content_type,
            headers=self.headers,
            body=self.body.decode("utf-8", errors="backslashreplace"),
            signature_valid=self.signature_valid,
            parse_error=parse_error,
        )


@dataclass
class IngestResult:
    raw_webhook: RawWebhook | None = None
    applied: int = 0  #: events that changed a summary
    stored: int = 0  #: new events and inbound messages stored
    duplicates: int = 0  #: events we already had
    transitions: list[tuple[Message, str, MessageEvent]] = field(default_factory=list)
    consent_changes: list[InboundMessage] = field(default_factory=list)  #: new STOP / START


def ingest(
    events: list[NormalizedEvent | InboundEvent], raw: RawRequest | None = None
) -> IngestResult:
    """Store ``raw`` and ``events``; update each message summary. Idempotent.

    Delivery reports (NormalizedEvent) and messages people sent us (InboundEvent) may come in
    the same request (some providers use one URL for both). Signals go out after commit: once
    per real status transition, once per new opt-out / opt-in.
    """
    using = router.db_for_write(Message)
    result = IngestResult()
    with transaction.atomic(using=using):
        if raw is not None:
            result.raw_webhook = raw.record()
            result.raw_webhook.save(using=using)
        for event in events:
            if isinstance(event, InboundEvent):
                _ingest_inbound(event, result, using)
            else:
                _ingest_one(event, result, using)
    for message, previous, event in result.transitions:
        transaction.on_commit(
            lambda m=message, p=previous, e=event: message_status_changed.send(
                sender=Message, message=m, previous_status=p, status=m.current_status, event=e
            ),
            using=using,
        )
    for inbound in result.consent_changes:
        transaction.on_commit(
            lambda r=inbound: consent_changed.send(
                sender=InboundMessage, inbound=r, opted_out=r.consent == ConsentChange.OPT_OUT
            ),
            using=using,
        )
    return result


def _ingest_inbound(event: InboundEvent, result: IngestResult, using: str) -> None:
    """Store one inbound message unless we have it already (provider + message id)."""
    record = InboundMessage(
        provider=event.provider,
        provider_message_id=event.provider_message_id,
        raw_webhook=result.raw_webhook,
        our_identity=event.our_identity[:100],
        keyword=event.keyword,
        consent=event.consent,
    )
    record.set_sender(event.sender)
    record.pk = _insert_unless_duplicate(
        record, using, conflict=("provider", "provider_message_id")
    )
    if record.pk is None:
        result.duplicates += 1
        return
    result.stored += 1
    if record.consent in (ConsentChange.OPT_OUT, ConsentChange.OPT_IN):
        result.consent_changes.append(record)


def store_unparsed(raw: RawRequest, error: str) -> RawWebhook:
    """Keep a verified request we could not parse, for review (it never becomes an event)."""
    record = raw.record(parse_error=error)
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
    """
    using = router.db_for_write(Message)
    with transaction.atomic(using=using):
        message = _lock_or_create(provider, provider_message_id, using)
        if to:
            message.set_recipient(to)
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


def _lock_or_create(provider: str, provider_message_id: str, using: str) -> Message:
    """The message row, locked for this transaction; created if it does not exist yet.

    Lock first, insert events after: inserting an event share-locks its message row (foreign
    key), so locking afterwards can deadlock with a concurrent delivery doing the same.
    """
    lookup = {"provider": provider, "provider_message_id": provider_message_id}
    locked = Message.objects.using(using).select_for_update(no_key=True)
    message = locked.filter(**lookup).first()
    if message is None:
        Message.objects.using(using).bulk_create([Message(**lookup)], ignore_conflicts=True)
        message = locked.get(**lookup)
    return message


def _ingest_one(event: NormalizedEvent, result: IngestResult, using: str) -> None:
    message = _lock_or_create(event.provider, event.provider_message_id, using)
    now = timezone.now()
    key = event.dedupe_key
    new_key = precedence_key(event.status, event.provider_occurred_at, event.error_code, key)
    applies = supersedes(new_key, message.summary_key())
    record = MessageEvent(
        message=message,
        raw_webhook=result.raw_webhook,
        provider_event_id=event.provider_event_id,
        dedupe_key=key,
        status=event.status,
        raw_status=event.raw_status,
        error_code=event.error_code,
        error_category=event.error_category,
        error_detail=event.error_detail[:255],
        provider_occurred_at=event.provider_occurred_at,
        raw_payload=event.raw_payload,
        received_at=now,
        applied=applies,
    )
    record.pk = _insert_unless_duplicate(record, using)
    if record.pk is None:
        result.duplicates += 1
        MessageEvent.objects.using(using).filter(dedupe_key=key).update(
            duplicate_count=F("duplicate_count") + 1, last_duplicate_at=now
        )
        return
    result.stored += 1
    previous = message.current_status
    _fold_into_summary(message, event, key, applies, now)
    message.save(using=using)
    if applies:
        result.applied += 1
        if message.current_status != previous:
            result.transitions.append((message, previous, record))


def _fold_into_summary(
    message: Message, event: NormalizedEvent, key: str, applies: bool, now: datetime
) -> None:
    """Update ``message`` with a newly stored event (the caller holds the row lock)."""
    when = event.provider_occurred_at or now
    if event.status in _IMPLIES_SENT and (
        not message.first_sent_at or when < message.first_sent_at
    ):
        message.first_sent_at = when
    if event.status in _IMPLIES_DELIVERED and (
        not message.delivered_at or when < message.delivered_at
    ):
        message.delivered_at = when
    if event.status == Status.UNKNOWN:
        message.needs_review = True
    message.last_event_at = now
    if event.recipient and not message.recipient_hash:
        message.set_recipient(event.recipient)
    for name in ("sender_identity", "destination_country", "segments"):
        value = getattr(event, name)
        if value and not getattr(message, name):
            setattr(message, name, value)
    if applies:
        message.current_status = event.status
        message.status_occurred_at = event.provider_occurred_at
        message.status_event_key = key
        message.error_code = event.error_code
        message.error_category = event.error_category


def _insert_unless_duplicate(record, using: str, conflict=("dedupe_key",)) -> int | None:
    """``INSERT … ON CONFLICT (<conflict>) DO NOTHING RETURNING id``: the new id, or None.

    One statement that says whether the row is new, which decides whether the summary and the
    signals run. PostgreSQL and SQLite (>= 3.35) share this syntax; ``conflict`` names the
    columns of a unique constraint of the record's table.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    opts = record._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    columns = ", ".join(quote(f.column) for f in fields)
    values = [f.get_db_prep_save(f.pre_save(record, add=True), connection) for f in fields]
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (
        f"INSERT INTO {quote(opts.db_table)} ({columns}) "  # noqa: S608 - names, not input
        f"VALUES ({placeholders}) ON CONFLICT ({', '.join(map(quote, conflict))}) "
        f"DO NOTHING RETURNING {quote(opts.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    return row[0] if row else None
