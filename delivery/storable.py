"""Values made storable before they reach the database.

A verified request may carry anything: ids longer than their column, NUL bytes (PostgreSQL text
refuses them), lone surrogates (they have no UTF-8 encoding), counts out of a column's range, a
list where text belongs. The ingest service passes every event through here first, so the
database never refuses a value, and a provider is never made to retry a poison callback forever:

- a value of the wrong type (a list, an object, a bool where text belongs) is unreadable:
  :class:`~delivery.exceptions.MalformedPayload`, and the raw request is kept for review;
- NUL is dropped and lone surrogates become U+FFFD;
- text longer than its column is cut and ends in "…"; identity columns (message ids, event ids,
  error codes: they make up the dedupe key) end in "…" and a digest of the whole value instead,
  so distinct long ids stay distinct and a redelivery still dedupes;
- a count outside its column's range is dropped (None); the encrypted raw payload keeps it;
- phone numbers never reach a readable column: provider words (status, error code and text,
  dedupe parts) are stored with numbers masked, and an identifier (message id, event id) that
  holds a "+"-number is replaced by a keyed token of itself, so it stays distinct and dedupes.
  The exact values stay in the encrypted raw payload. Our own sender identities are not
  personal data and are stored as sent.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from typing import Any

from django.db import models

from . import crypto
from .events import ConsentChange, InboundEvent, NormalizedEvent
from .exceptions import MalformedPayload
from .lifecycle import ErrorCategory, Status
from .masking import has_international_number, mask_text
from .models import InboundMessage, Message, MessageEvent
from .recipients import recipient_token

ELLIPSIS = "…"
# A choices class's ``values`` builds its list again on every read: read once.
_STATUSES = frozenset(Status.values)
_CATEGORIES = frozenset(ErrorCategory.values)
_CONSENTS = frozenset(ConsentChange.values)
_DIGEST = 16  #: hex digits of SHA-256 that end a cut identity value
#: ``PositiveSmallIntegerField`` on every database Django supports.
SMALL_COUNT = range(0, 32768)


def text(value: Any, max_length: int | None = None, *, identity: bool = False, name: str) -> str:
    """``value`` as text a text column of ``max_length`` accepts (see the module docstring)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedPayload(f"Unreadable {name}: {type(value).__name__}, not text.")
    value = str(value)
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", errors="replace").decode("utf-8")
    if max_length is None or len(value) <= max_length:
        return value
    if identity:
        digest = hashlib.sha256(value.encode()).hexdigest()[:_DIGEST]
        return value[: max_length - _DIGEST - 1] + ELLIPSIS + digest
    return value[: max_length - 1] + ELLIPSIS


def word(value: Any, max_length: int | None = None, *, name: str) -> str:
    """A provider's word or code: text, numbers masked, fitted (as an identity: it may be part
    of a dedupe key)."""
    return text(mask_text(text(value, name=name)), max_length, identity=True, name=name)


def identifier(value: Any, max_length: int, *, name: str) -> str:
    """An id: text, replaced by a keyed token if it holds a phone number, fitted."""
    value = text(value, name=name)
    if has_international_number(value):
        value = "number:" + recipient_token(value)
    return text(value, max_length, identity=True, name=name)


def count(value: Any) -> int | None:
    """A count for a ``PositiveSmallIntegerField``; None when missing or out of range."""
    if isinstance(value, int) and not isinstance(value, bool) and value in SMALL_COUNT:
        return value
    return None


def sealed_payload(data: Any) -> str:
    """The raw payload of an event, encrypted; MalformedPayload if it is not JSON data."""
    try:
        return crypto.encrypt_json(data)
    except (TypeError, ValueError, RecursionError) as exc:
        raise MalformedPayload(f"Unreadable payload: {type(exc).__name__}.") from None


def column_length(model: type[models.Model], field: str) -> int:
    """The ``max_length`` of a text column of ``model``."""
    length = getattr(model._meta.get_field(field), "max_length", None)
    if not isinstance(length, int):
        raise TypeError(f"{model.__name__}.{field} has no max_length")
    return length


def _instant(when: object) -> bool:
    """Whether ``when`` is an aware time that exists in UTC: year 1 at 00:30 in UTC+1 is
    before year 1 there (PostgreSQL would store it as a BC time Python cannot read back)."""
    if not isinstance(when, datetime) or when.tzinfo is None:
        return False
    try:
        when.astimezone(UTC)
    except OverflowError:
        return False
    return True


def event(e: NormalizedEvent) -> NormalizedEvent:
    """``e`` with every field fitted to its column; MalformedPayload if a field is unreadable."""
    if not isinstance(e.status, str) or e.status not in _STATUSES:
        raise MalformedPayload("Unreadable status.")
    when = e.provider_occurred_at
    if when is not None and not _instant(when):
        raise MalformedPayload("Unreadable provider time.")
    message_id = identifier(
        e.provider_message_id, column_length(Message, "provider_message_id"), name="message id"
    )
    if not message_id:
        raise MalformedPayload("The message id is empty.")
    country = text(e.destination_country, name="country")
    category = text(e.error_category, name="error category")
    detail = text(e.error_detail, name="error text")
    return dataclasses.replace(
        e,
        provider=text(e.provider, column_length(Message, "provider"), name="provider"),
        provider_message_id=message_id,
        raw_status=word(e.raw_status, column_length(MessageEvent, "raw_status"), name="status"),
        status=Status(e.status),
        provider_event_id=identifier(
            e.provider_event_id, column_length(MessageEvent, "provider_event_id"), name="event id"
        ),
        error_code=word(e.error_code, column_length(MessageEvent, "error_code"), name="error code"),
        error_category=category if category in _CATEGORIES else "",
        error_detail=text(
            mask_text(detail), column_length(MessageEvent, "error_detail"), name="error text"
        ),
        recipient=text(e.recipient, name="recipient"),
        sender_identity=text(
            e.sender_identity, column_length(Message, "sender_identity"), name="sender"
        ),
        destination_country=country if len(country) == 2 else "",
        segments=count(e.segments),
        dedupe_parts=tuple(word(part, name="dedupe part") for part in e.dedupe_parts),
    )


def inbound(e: InboundEvent) -> InboundEvent:
    """``e`` with every field fitted to its column; MalformedPayload if a field is unreadable."""
    message_id = identifier(
        e.provider_message_id,
        column_length(InboundMessage, "provider_message_id"),
        name="message id",
    )
    if not message_id:
        raise MalformedPayload("The message id is empty.")
    consent = text(e.consent, name="consent")
    return dataclasses.replace(
        e,
        provider=text(e.provider, column_length(InboundMessage, "provider"), name="provider"),
        provider_message_id=message_id,
        sender=text(e.sender, name="sender"),
        our_identity=text(
            e.our_identity, column_length(InboundMessage, "our_identity"), name="receiving identity"
        ),
        keyword=word(e.keyword, column_length(InboundMessage, "keyword"), name="keyword"),
        consent=consent if consent in _CONSENTS else "",
    )
