"""Telnyx Messaging (API v2) delivery webhooks: verify their Ed25519 signature as the SDK's
verifier does (with ``cryptography``), map each recipient's ``to[].status`` to the canonical
lifecycle.

Sources:
https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks (events, envelope,
retries), https://developers.telnyx.com/api-reference/callbacks/delivery-update (payload),
https://developers.telnyx.com/docs/development/sdk/python/webhooks (verification), and the
``telnyx`` SDK itself: ``telnyx/lib/webhook_verification.py`` (verifier) and
``telnyx/types/outbound_message_payload.py`` (the ``to[].status`` enum), read in telnyx 4.189.
Inbound messages (``message.received``):
https://developers.telnyx.com/api-reference/callbacks/inbound-message and the SDK's
``telnyx/types/messaging_inbound_message_payload.py`` (4.189).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from delivery.adapters import (
    POLL_TIMEOUT,
    BaseProvider,
    ProviderOptions,
    WebhookRequest,
    secret_list,
)
from delivery.events import (
    ConsentChange,
    Event,
    EventSource,
    InboundEvent,
    NormalizedEvent,
    keyword_of,
)
from delivery.exceptions import (
    ConfigurationError,
    MalformedPayload,
    MessageNotFound,
    PollFailed,
    RateLimited,
    SignatureInvalid,
)
from delivery.lifecycle import Status
from delivery.masking import get_logger
from delivery.recipients import recipient_token

from .fields import int_or_none
from .telnyx_errors import TELNYX_ERRORS

logger = get_logger(__name__)

#: Inbound messages arrive on the messaging profile's one webhook URL too, next to the delivery
#: reports (https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks: "Webhook
#: event types": ``message.received``, "An inbound SMS/MMS arrives at your number").
INBOUND_EVENT = "message.received"
#: The headers Telnyx signs with, and how far its timestamp may be from now (the SDK's
#: telnyx.lib.webhook_verification values).
SIGNATURE_HEADER = "telnyx-signature-ed25519"
TIMESTAMP_HEADER = "telnyx-timestamp"
TIMESTAMP_TOLERANCE_SECONDS = 300

#: ``payload.errors[]`` is message-level; the SDK documents it as "errors [that] may point at
#: addressees when referring to unsuccessful/unconfirmed delivery statuses". So a recipient gets
#: the error when its status failed, is unmapped or is ``delivery_unconfirmed``, and not when it
#: is in progress or arrived (in a group MMS those are the other recipients).
_NO_ERROR_STATUSES = frozenset({Status.ACCEPTED, Status.SENT, Status.DELIVERED, Status.READ})
_UNCONFIRMED = "delivery_unconfirmed"


def parse_occurred_at(value: Any) -> datetime | None:
    """``data.occurred_at`` (ISO 8601, e.g. ``2019-12-09T21:32:14.148+00:00`` or ``…574Z``) in UTC.

    Telnyx always sends an offset; a time without one is read as UTC. A missing or malformed
    value gives ``None`` (the raw value stays in the raw payload).
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass
class TelnyxOptions(ProviderOptions):
    """``SMS_DELIVERY["PROVIDERS"]["telnyx"]``."""

    #: The account's base64 Ed25519 public key from the Mission Control Portal; several during
    #: a rotation (a webhook verified by any of them is accepted).
    public_keys: list[str] = field(default_factory=list)
    #: An API key (Mission Control Portal → API Keys), only to ask the API about messages
    #: (``sms_delivery_reconcile``); webhooks are verified with the public keys.
    api_key: str = ""

    def __post_init__(self):
        self.public_keys = secret_list(self.public_keys)


class TelnyxProvider(BaseProvider[TelnyxOptions]):
    """Telnyx ``message.sent`` / ``message.finalized`` webhooks at ``/webhooks/telnyx/status/``.

    Options: :class:`TelnyxOptions`.

    Telnyx reports status per recipient (``data.payload.to[]``), so one webhook becomes one event
    per recipient. A message with one recipient (every ``POST /v2/messages``) keeps Telnyx's
    message id as ``provider_message_id``; a message with several recipients (group MMS) becomes
    one message per recipient, ``"<message id>:<recipient token>"`` (a keyed digest of the
    number, see :func:`delivery.recipients.recipient_token`), because a Message here has exactly
    one recipient and its own summary.

    ``message.received`` (a person texted one of our numbers) arrives on the same URL and becomes
    an :class:`~delivery.events.InboundEvent` (opt-out keywords); ``/webhooks/telnyx/inbound/``
    accepts exactly the same webhooks, for a messaging profile pointed there instead.
    """

    name = "telnyx"
    Options = TelnyxOptions
    # to[].status -> canonical. The enum is the SDK's (OutboundMessagePayload.To.status, 4.189);
    # Telnyx publishes no per-status table, so the meanings are read from the event types
    # ("message.sent: accepted and sent to the carrier"; "message.finalized: reached a terminal
    # state") and from the field docs.
    statuses = {
        "queued": Status.ACCEPTED,  # accepted by the API, waiting in Telnyx's queue
        "sending": Status.ACCEPTED,  # being handed to the carrier
        "sent": Status.SENT,  # accepted by the carrier (message.sent)
        "delivered": Status.DELIVERED,  # carrier delivery receipt (message.finalized)
        "read": Status.READ,  # RCS / WhatsApp read receipt (message.read)
        # Final, but says only that no delivery receipt came back: the message did leave
        # Telnyx, nothing more is known. SENT is the strongest claim that is true.
        "delivery_unconfirmed": Status.SENT,
        "delivery_failed": Status.UNDELIVERED,  # the carrier reported it was not delivered
        # "valid_until: ... or else it will be discarded and marked as 'sending_failed'": Telnyx
        # could not send it (queue expiry, rejection before the carrier).
        "sending_failed": Status.FAILED,
        "expired": Status.EXPIRED,  # validity period ended on the way to the handset
        # Group MMS only, from a support article rather than the API enum: "Handset delivery
        # status is not available for Non-Telnyx recipients ... their status will be marked as
        # unknown" (https://support.telnyx.com/en/articles/8255134). The message was sent.
        "unknown": Status.SENT,
    }
    errors = TELNYX_ERRORS

    def account(self, request: WebhookRequest) -> str:
        """The Telnyx organization id (``data.payload.organization_id``), "" if absent."""
        try:
            return str(request.json["data"]["payload"].get("organization_id") or "")
        except (MalformedPayload, KeyError, TypeError, AttributeError):
            return ""

    # -- authenticity ---------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """Ed25519 over ``"{telnyx-timestamp}|{raw body}"`` (``cryptography``), as the telnyx
        SDK's ``verify_webhook_signature`` checks it: a ``telnyx-timestamp`` more than 300 s
        from now in either direction is refused, so a replayed or stale request is too.

        Not the SDK itself: importing it cost ~70 MiB and most of a worker's start-up for
        this one check (docs/performance.md, "Memory and start-up"); the tests check that both
        accept and refuse the same requests.
        """
        keys = self.options.public_keys
        if not keys:
            raise SignatureInvalid("No Telnyx public key configured (PUBLIC_KEYS).")
        signature, stamp = request.header(SIGNATURE_HEADER), request.header(TIMESTAMP_HEADER)
        if not signature or not stamp:
            raise SignatureInvalid(f"Missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header.")
        try:
            request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Telnyx signs text; the SDK decodes the body as UTF-8 before checking it.
            raise SignatureInvalid("Body is not UTF-8; Telnyx cannot have signed it.") from exc
        try:
            skew = abs(int(time.time()) - int(stamp))  # whole seconds, as the SDK counts
        except ValueError as exc:
            raise SignatureInvalid(f"Invalid timestamp format: {stamp[:40]!r}.") from exc
        if skew > TIMESTAMP_TOLERANCE_SECONDS:
            raise SignatureInvalid(
                f"Telnyx signature could not be verified: Webhook timestamp is too old or too "
                f"new ({int(skew)}s difference)"
            )
        try:
            signed = base64.b64decode(signature)  # as leniently as the SDK decodes it
        except (binascii.Error, ValueError) as exc:
            raise SignatureInvalid("Telnyx signature is not base64.") from exc
        if len(signed) != 64:
            raise SignatureInvalid("Telnyx signature is not 64 bytes.")
        message = stamp.encode() + b"|" + request.body
        for key in keys:
            verifier = _public_key(key)
            if verifier is None:
                continue
            try:
                verifier.verify(signed, message)
            except InvalidSignature:
                continue
            return
        raise SignatureInvalid(
            "Telnyx signature could not be verified: signature does not match payload "
            "(or no configured public key is valid)"
        )

    # -- parsing --------------------------------------------------------------------------

    def parse(self, request: WebhookRequest) -> Sequence[Event]:
        """Delivery reports (one event per recipient) and inbound messages (``message.received``).

        A messaging profile has one webhook URL for both, so both come through here.
        """
        request.require_utf8()
        body = request.json
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise MalformedPayload("The body has no data object.")
        payload = data.get("payload")
        if not isinstance(payload, dict):
            raise MalformedPayload("data.payload is missing.")
        event_type = str(data.get("event_type") or "")
        if event_type == INBOUND_EVENT:
            return self._inbound(body, payload)
        if payload.get("direction") == "inbound":
            # Some other event about an inbound message: kept as evidence, nothing to record.
            logger.debug("Telnyx %s inbound event acknowledged; not parsed.", event_type)
            return []
        return self._delivery(body, data, payload, event_type)

    def _delivery(
        self, body: dict, data: dict, payload: dict, event_type: str
    ) -> list[NormalizedEvent]:
        message_id = payload.get("id")
        if not message_id or not isinstance(message_id, str):
            raise MalformedPayload("data.payload.id (the message id) is missing.")
        recipients = payload.get("to")
        if not isinstance(recipients, list) or not recipients:
            raise MalformedPayload("data.payload.to lists no recipient.")
        event_id = str(data.get("id") or "")
        occurred_at = parse_occurred_at(data.get("occurred_at"))
        error_code, error_detail = _first_error(payload.get("errors"))
        group = len(recipients) > 1
        events = []
        for index, recipient in enumerate(recipients):
            if not isinstance(recipient, dict) or not recipient.get("status"):
                raise MalformedPayload(f"data.payload.to[{index}] has no status.")
            number = str(recipient.get("phone_number") or "")
            raw_status = str(recipient["status"])
            status = self.map_status(raw_status)
            shows_error = status not in _NO_ERROR_STATUSES or raw_status.lower() == _UNCONFIRMED
            code = error_code if shows_error else ""
            # One event id covers every recipient of a group message: the recipient is part of
            # its identity, as a keyed token (ids are shown and logged; numbers must not be).
            # Retries carry the same data.id, so they still dedupe.
            suffix = f":{recipient_token(number) if number else f'#{index}'}" if group else ""
            events.append(
                NormalizedEvent(
                    provider=self.name,
                    provider_message_id=message_id + suffix,
                    provider_event_id=event_id + suffix if event_id else "",
                    raw_status=raw_status,
                    status=status,
                    provider_occurred_at=occurred_at,
                    error_code=code,
                    error_category=self.errors.category(code),
                    error_detail=error_detail if code else "",
                    recipient=number,
                    sender_identity=_sender(payload.get("from")),
                    segments=int_or_none(payload.get("parts")),
                    raw_payload=body,
                    dedupe_parts=(event_type,),
                )
            )
        return events

    # -- reconciliation ---------------------------------------------------------------------
    # GET /v2/messages/{id} through the SDK (``messages.retrieve``): the message as a webhook's
    # data.payload carries it, to[] with each recipient's status, errors[], completed_at /
    # sent_at (https://developers.telnyx.com/api-reference/messages/retrieve-a-message).

    can_poll = True

    def fetch_status(self, provider_message_id: str) -> list[NormalizedEvent]:
        """A group message (``"<id>:<recipient token>"``) is asked about by its Telnyx id;
        the recipient's own entry in ``to[]`` says its status."""
        if not self.options.api_key:
            raise PollFailed("API_KEY is needed to ask Telnyx's API.")
        message_id = provider_message_id.partition(":")[0]
        try:
            import telnyx  # heavy (~70 MiB): only where polling is used
        except ImportError as exc:
            raise ConfigurationError(
                "Asking Telnyx's API needs its SDK: pip install 'django-sms-delivery[telnyx]'"
            ) from exc
        client = telnyx.Telnyx(api_key=self.options.api_key, timeout=POLL_TIMEOUT, max_retries=0)
        try:
            body = client.messages.with_raw_response.retrieve(message_id).json()
        except telnyx.NotFoundError as exc:
            raise MessageNotFound(f"Telnyx knows no message {message_id}.") from exc
        except telnyx.RateLimitError as exc:
            wait = exc.response.headers.get("retry-after")
            seconds = float(wait) if wait and wait.replace(".", "", 1).isdigit() else None
            raise RateLimited("Telnyx API: too many requests (429).", seconds) from exc
        except telnyx.APIStatusError as exc:
            raise PollFailed(f"Telnyx API answered {exc.status_code}.") from exc
        except telnyx.APIError as exc:  # timeouts, refused connections
            raise PollFailed(f"Telnyx API unreachable ({type(exc).__name__}).") from exc
        payload = body.get("data") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(payload, dict):
            raise PollFailed("Telnyx API answered without a message.")
        occurred = payload.get("completed_at") or payload.get("sent_at")
        try:
            events = self._delivery(body, {"occurred_at": occurred}, payload, "poll")
        except MalformedPayload as exc:
            raise PollFailed(f"Telnyx API answer unreadable: {exc.detail}") from exc
        # What the API said, without the numbers or the text: the answer names every
        # recipient of a group message, and a poll event has no raw request an erasure of
        # one of them would blank.
        said = {
            "id": payload.get("id"),
            "to": [
                {"status": r.get("status"), "carrier": r.get("carrier")}
                for r in payload.get("to") or []
                if isinstance(r, dict)
            ],
            "errors": [
                {"code": e.get("code"), "title": e.get("title")}
                for e in payload.get("errors") or []
                if isinstance(e, dict)
            ],
            "parts": payload.get("parts"),
            "sent_at": payload.get("sent_at"),
            "completed_at": payload.get("completed_at"),
        }
        found = [
            replace(event, source=EventSource.POLL, raw_payload=said)
            for event in events
            if event.provider_message_id == provider_message_id
        ]
        if not found:
            raise MessageNotFound(f"Telnyx's message {message_id} has no such recipient.")
        return found

    # -- inbound messages (opt-out keywords) -----------------------------------------------
    # Shape: https://developers.telnyx.com/api-reference/callbacks/inbound-message and
    # https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks ("Inbound message
    # (message.received)"): data.payload.id (message id), from.phone_number (the person),
    # to[] (our receiving number(s): phone_number, or agent_id for RCS), text. The SDK
    # (MessagingInboundMessagePayload, telnyx 4.189) adds that ``to`` is one bare number for
    # WhatsApp (an older Telnyx SDK's webhook test payload has it too: UNCONFIRMED for SMS), and
    # ``autoresponse_type``: "Automatic response type triggered by an inbound opt-in, opt-out, or
    # help keyword. Examples include START, STOP, and HELP."

    #: ``/webhooks/telnyx/inbound/`` exists. It takes every Telnyx webhook, as the status URL
    #: does: a messaging profile has one URL, so delivery reports of messages sent from a
    #: profile pointed there arrive there too.
    receives_inbound = True
    inbound_on_status_url = True  # message.received arrives on the status URL too
    _AUTORESPONSE_TYPES = {
        "STOP": ConsentChange.OPT_OUT,
        "START": ConsentChange.OPT_IN,
        "HELP": ConsentChange.HELP,
    }

    def parse_inbound(self, request: WebhookRequest) -> Sequence[Event]:
        """The same as :meth:`parse`; the answer is the usual JSON (Telnyx wants only a 2xx)."""
        return self.parse(request)

    def _inbound(self, body: dict, payload: dict) -> list[InboundEvent]:
        """One InboundEvent per number of ours in ``to[]``.

        Several numbers (a group MMS reaching more than one of our numbers) give several
        events, ``provider_message_id`` ``"<message id>:<token of our number>"``. The other group
        participants are listed in ``cc[]`` ("inbound group messages via webhooks with a cc
        field listing all participants",
        https://developers.telnyx.com/docs/messaging/messages/group-messaging) and are never
        taken as ours. UNCONFIRMED: that ``to[]`` of an inbound group MMS holds only our numbers.
        """
        message_id = payload.get("id")
        if not message_id or not isinstance(message_id, str):
            raise MalformedPayload("data.payload.id (the message id) is missing.")
        sender = _sender(payload.get("from"))
        if not sender:
            raise MalformedPayload("data.payload.from.phone_number (the sender) is missing.")
        ours = _our_numbers(payload.get("to"), sender)
        if not ours:
            raise MalformedPayload("data.payload.to lists none of our numbers.")
        keyword, consent = keyword_of(_text(payload))
        autoresponse = str(payload.get("autoresponse_type") or "").strip().upper()
        if autoresponse in self._AUTORESPONSE_TYPES:
            # Telnyx matched a keyword of the profile's own list (which may hold more words).
            keyword, consent = keyword or autoresponse, self._AUTORESPONSE_TYPES[autoresponse]
        group = len(ours) > 1
        return [
            InboundEvent(
                provider=self.name,
                provider_message_id=_inbound_id(message_id, number) if group else message_id,
                sender=sender,
                our_identity=number,
                keyword=keyword,
                consent=consent,
                raw_payload=body,
            )
            for number in ours
        ]

    def missing_credentials(self) -> str | None:
        if self.options.public_keys:
            return None
        return "has no PUBLIC_KEYS; every Telnyx webhook would be rejected"

    def configuration_errors(self) -> list[str]:
        keys = self.options.public_keys
        return [
            f"PUBLIC_KEYS entry {position} is not a base64 Ed25519 public key (32 bytes)"
            for position, key in enumerate(keys, start=1)
            if not _is_public_key(key)
        ]


@cache
def _public_key(encoded: str) -> Ed25519PublicKey | None:
    """A configured base64 public key, or None if it is not one (the others are still tried)."""
    try:
        raw = base64.b64decode(encoded)  # as leniently as the SDK decodes it
        return Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else None
    except (binascii.Error, ValueError):
        return None


def _first_error(errors: Any) -> tuple[str, str]:
    """Code and text of the first entry of ``payload.errors[]`` (the message-level errors)."""
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, dict) and error.get("code") not in (None, ""):
            return str(error["code"]), str(error.get("detail") or error.get("title") or "")
    return "", ""


def _sender(value: Any) -> str:
    """``payload.from``: an object (``phone_number``; ``agent_id`` for RCS) or, in older
    examples, a bare number."""
    if isinstance(value, dict):
        return str(value.get("phone_number") or value.get("agent_id") or "")
    return value if isinstance(value, str) else ""


def _our_numbers(value: Any, sender: str) -> list[str]:
    """Our receiving numbers in an inbound ``payload.to``: a list of objects (SMS, MMS, RCS) or
    one bare number (WhatsApp, older examples). Blanks, repeats and the sender are left out."""
    entries = value if isinstance(value, list) else [value]
    numbers = [_sender(entry) for entry in entries]
    return [n for n in dict.fromkeys(numbers) if n and n != sender]


def _text(payload: dict) -> str:
    """The message text: ``payload.text`` (SMS / MMS), else ``payload.body.text`` (RCS: a
    string; WhatsApp: ``{"body": ...}``)."""
    text = payload.get("text")
    if isinstance(text, str) and text:
        return text
    body = payload.get("body")
    text = body.get("text") if isinstance(body, dict) else None
    if isinstance(text, dict):
        text = text.get("body")
    return text if isinstance(text, str) else ""


def _inbound_id(message_id: str, number: str) -> str:
    """``"<message id>:<token of our number>"``: the same shape as a group message's
    recipients (a keyed token: ids never show a number, ours included)."""
    return f"{message_id}:{recipient_token(number)}"


def _is_public_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False
