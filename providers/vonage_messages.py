"""Vonage Messages API webhooks: the signed bearer token, status webhooks and inbound messages.

Split out of :mod:`providers.vonage`, which registers the one ``VonageProvider``, decides which
product sent a request and calls the functions here (this module never imports it back). Sources (see ../shared/providers.md §2.2):

- Status webhooks (POST JSON): https://developer.vonage.com/en/messages/concepts/messages-status-callbacks
- Inbound messages (POST JSON to the application's Inbound URL): ``message_uuid``, ``from`` (the
  person), ``to`` (our number or channel address), ``channel``, ``message_type``, ``text``,
  ``timestamp``, ``client_ref``, and for SMS ``sms.num_messages`` / ``sms.keyword``; fields as
  Vonage's Java SDK reads them (``InboundMessage``, test ``InboundMessageTest``); webhook set-up in
  https://developer.vonage.com/en/messages/code-snippets/configure-webhooks
- Both carry the same ``Authorization: Bearer`` JWT (HS256, signature secret), checked with
  ``vonage_jwt.verify_signature``; its ``payload_hash`` claim is checked against the SHA-256 of the
  raw body here, as the SDK leaves that to us
  (https://developer.vonage.com/en/messages/concepts/signed-webhooks; for inbound messages:
  https://developer.vonage.com/en/blog/validating-inbound-messages-from-the-vonage-messages-api-dr).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from vonage_jwt import VonageVerifyJwtError, verify_signature

from delivery.adapters import WebhookRequest
from delivery.error_codes import ErrorCatalogue
from delivery.events import InboundEvent, NormalizedEvent, keyword_of
from delivery.exceptions import MalformedPayload, SignatureInvalid
from delivery.lifecycle import Status

from .fields import int_or_none, with_plus

#: Channels whose addresses are phone numbers in E.164 without "+" (Messenger's are page ids).
PHONE_CHANNELS = frozenset({"", "sms", "mms", "whatsapp", "viber", "rcs"})
#: Channels whose addresses are shown as sent; others get a prefix: ``whatsapp:447700900001``.
PLAIN_CHANNELS = frozenset({"", "sms", "mms"})


class UnsignedCallback(SignatureInvalid):
    """A Messages API callback without a token: answer 503 so that Vonage sends it again, signed.

    Vonage: "In the rare case of an internal error, it is possible that the callback service will
    send an unsigned callback. By returning an HTTP 5xx response, a retry will be triggered"
    (signed-webhooks page). A 403 would lose that callback for good: Vonage does not retry 4xx.
    Nothing is written, as for any failed check.
    """

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _(
        "Messages API callback without an Authorization bearer token (signature); answering "
        "503 so that Vonage retries it."
    )


# -- which product --------------------------------------------------------------------------


def is_json(request: WebhookRequest) -> bool:
    return request.method == "POST" and request.content_type == "application/json"


def is_messages(request: WebhookRequest) -> bool:
    """A bearer token, or a JSON object with ``message_uuid``: a Messages API callback."""
    if bearer_token(request) is not None:
        return True
    if not is_json(request):
        return False
    try:
        data = request.json
    except MalformedPayload:
        return False
    return isinstance(data, dict) and "message_uuid" in data


# -- authenticity ---------------------------------------------------------------------------


def bearer_token(request: WebhookRequest) -> str | None:
    """The token of ``Authorization: Bearer <token>`` ("" if empty), None without one."""
    scheme, _, token = request.header("Authorization").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def unverified_claims(token: str | None) -> dict:
    """Claims read *without* verification, only to pick the secret (``api_key``)."""
    try:
        claims = jwt.decode(token or "", options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def verify_token(
    request: WebhookRequest,
    secrets_for: Callable[[str], list[str]],
    check_age: Callable[[Any, str], None],
) -> None:
    """Raise SignatureInvalid unless the bearer token is Vonage's and vouches for this body.

    ``secrets_for(api_key)`` gives the secrets to try; ``check_age(iat, "iat")`` judges the
    token's time (the provider's SIGNATURE_MAX_AGE).
    """
    token = bearer_token(request)
    if not token:
        raise UnsignedCallback()
    secrets = secrets_for(text_of(unverified_claims(token).get("api_key")))
    if not secrets:
        raise SignatureInvalid("No Vonage signature secret is configured.")
    secret = _matching_secret(token, secrets)
    try:  # the signature is verified; decode it again for its claims, iat judged below
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_iat": False})
    except jwt.PyJWTError as exc:
        raise SignatureInvalid(f"Signed token rejected: {exc}") from exc
    expected = claims.get("payload_hash")
    if not isinstance(expected, str) or not expected:
        raise SignatureInvalid("Signed token has no payload_hash; the body is unverified.")
    actual = hashlib.sha256(request.body).hexdigest()
    if not hmac.compare_digest(expected.strip().lower().encode(), actual.encode()):
        raise SignatureInvalid("Body does not match the signed token's payload_hash.")
    check_age(claims.get("iat"), "iat")


def _matching_secret(token: str, secrets: list[str]) -> str:
    """The secret whose signature ``token`` carries, checked by ``vonage_jwt.verify_signature``."""
    for secret in secrets:
        try:
            if verify_signature(token, secret):
                return secret
        except VonageVerifyJwtError as exc:
            # PyJWT checks the signature before the claims, and checks ``iat`` with no leeway:
            # a token issued a second "in the future" by Vonage's clock has a valid signature.
            # Its time is judged by check_age, with CLOCK_SKEW. Any other error is final.
            if isinstance(exc.__context__, jwt.ImmatureSignatureError):
                return secret
            raise SignatureInvalid(f"Signed token rejected: {exc}") from exc
    raise SignatureInvalid("Token signature does not match any signature secret.")


# -- status webhooks ------------------------------------------------------------------------


def parse_messages_timestamp(value: Any) -> datetime | None:
    """A Messages API ``timestamp`` as an aware UTC datetime, or ``None``.

    Vonage sends ISO 8601 in UTC (``2023-05-01T14:00:00.000Z``); Vonage's Java SDK once read
    ``yyyy-MM-dd HH:mm:ss Z`` (``2020-01-01 15:43:21 +0200``), accepted too. No offset: UTC.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.strptime(value, "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def messages_error_code(error: dict) -> str:
    """The code of a Messages API ``error`` object: ``type`` ends in ``#<code>``, else ``title``."""
    _, hash_sign, fragment = text_of(error.get("type")).rpartition("#")
    if hash_sign and fragment:
        return fragment
    title = text_of(error.get("title"))
    return title if title.isdigit() else ""


def parse_status(
    request: WebhookRequest,
    provider_name: str,
    statuses: dict[str, Status],
    errors: ErrorCatalogue,
) -> NormalizedEvent:
    """A Messages API status webhook as a normalized event, mapped with ``statuses``."""
    data = _json_object(request)
    message_uuid = text_of(data.get("message_uuid"))
    if not message_uuid:
        raise MalformedPayload("message_uuid is missing.")
    raw_status = text_of(data.get("status"))
    if not raw_status:
        raise MalformedPayload("status is missing.")
    error = _object(data.get("error"))
    error_code = messages_error_code(error)
    title = text_of(error.get("title"))
    channel = text_of(data.get("channel")).lower()
    recipient = address(data.get("to"))
    sms = _object(data.get("sms"))
    return NormalizedEvent(
        provider=provider_name,
        provider_message_id=message_uuid,
        raw_status=raw_status,
        status=statuses.get(raw_status.lower(), Status.UNKNOWN),
        provider_occurred_at=parse_messages_timestamp(data.get("timestamp")),
        error_code=error_code,
        error_category=errors.category(error_code),
        error_detail=text_of(error.get("detail")) or (title if title != error_code else ""),
        recipient=with_plus(recipient) if channel in PHONE_CHANNELS else recipient,
        sender_identity=channel_identity(channel, address(data.get("from"))),
        segments=int_or_none(sms.get("count_total")),
        raw_payload=data,
    )


# -- inbound messages -----------------------------------------------------------------------


def parse_inbound(request: WebhookRequest, provider_name: str) -> InboundEvent:
    """A message a person sent to our number or channel address, from the Inbound URL.

    ``from`` is the person, ``to`` is ours; ``to`` gets the channel prefix the status side gives
    our sender identity (``whatsapp:447700900000``), so the two can be matched. Only the ``text``
    of a text message can be a keyword (an image caption or a button reply is not). Vonage's own
    ``sms.keyword`` is the first word, so "Stop texting me" would be STOP: it is not used; the
    whole text is matched with :func:`~delivery.events.keyword_of`.
    """
    data = _json_object(request)
    if "status" in data:
        raise MalformedPayload(
            "This is a Messages API status webhook, not an inbound message: point the "
            "application's Status URL at /webhooks/vonage/status/."
        )
    message_uuid = text_of(data.get("message_uuid"))
    sender = address(data.get("from"))
    if not message_uuid or not sender:
        raise MalformedPayload("message_uuid or from is missing.")
    channel = text_of(data.get("channel")).lower()
    message_type = text_of(data.get("message_type")).lower()
    text = data.get("text") if message_type in ("", "text") else None
    keyword, consent = keyword_of(text) if isinstance(text, str) else ("", "")
    return InboundEvent(
        provider=provider_name,
        provider_message_id=message_uuid,
        sender=with_plus(sender) if channel in PHONE_CHANNELS else sender,
        our_identity=channel_identity(channel, address(data.get("to"))),
        keyword=keyword,
        consent=consent,
        raw_payload=data,
    )


# -- helpers (shared with providers.vonage) -------------------------------------------------


def _json_object(request: WebhookRequest) -> dict:
    data = request.json
    if not isinstance(data, dict):
        raise MalformedPayload("JSON body is not an object.")
    return data


def _object(value: Any) -> dict:
    """A nested JSON object, or an empty one when the field is missing or not an object."""
    return value if isinstance(value, dict) else {}


def channel_identity(channel: str, value: str) -> str:
    """Our address on ``channel`` as the adapter records it: ``whatsapp:<number>`` off SMS/MMS."""
    return value if channel in PLAIN_CHANNELS or not value else f"{channel}:{value}"


def address(value: Any) -> str:
    """A Messages API ``to``/``from``: a string, or ``{"type": …, "number"|"id": …}`` (v0.1)."""
    if isinstance(value, dict):
        return text_of(value.get("number") or value.get("id"))
    return text_of(value)


def text_of(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value).strip()
