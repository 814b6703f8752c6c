"""Plivo message status callbacks (SMS, MMS, WhatsApp).

Plivo calls the ``url`` given in the Send Message request with ``method`` POST (form fields, the
default) or GET (query string) on every status change:
https://www.plivo.com/docs/messaging/api/message/message-status-callbacks and
https://www.plivo.com/docs/messaging/api/message/send-a-message (see ../shared/providers.md §3).
Requests are verified with the ``plivo`` SDK's own validators over the exact URL Plivo called,
and ``Status`` is mapped to the canonical lifecycle. Incoming messages (the application's
``message_url``) are verified the same way and reduced to opt-out / opt-in keywords (section
"inbound messages" below).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import plivo
import requests
from django.conf import settings
from django.core.cache import caches
from django.http import HttpResponse
from plivo.exceptions import (
    AuthenticationError,
    ForbiddenError,
    InvalidRequestError,
    PlivoRestError,
    PlivoServerError,
    ResourceNotFoundError,
    ValidationError,
)
from plivo.utils import validate_signature, validate_v3_signature

from delivery.adapters import (
    POLL_TIMEOUT,
    SEND_TIMEOUT,
    BaseProvider,
    ProviderOptions,
    WebhookRequest,
    secret_list,
)
from delivery.events import ConsentChange, EventSource, InboundEvent, NormalizedEvent, keyword_of
from delivery.exceptions import (
    ConfigurationError,
    MalformedPayload,
    MessageNotFound,
    PollFailed,
    RateLimited,
    SendRefused,
    SendUnanswered,
    SignatureInvalid,
    StorageUnavailable,
)
from delivery.lifecycle import Status
from delivery.masking import get_logger, mask_text
from delivery.outgoing import Outgoing, Sent

from .fields import form_fields, int_or_none, with_plus
from .plivo_errors import PLIVO_ERRORS

logger = get_logger(__name__)

# Signature headers, tried in this order (https://docs.plivo.com/docs/voice/xml/request/validation
# and https://docs.plivo.com/docs/messaging/concepts/signature-validation). "-V3"/"-V2" are signed
# with the token of the (sub)account that sent the message, "-Ma-" always with the main account's.
V3_SIGNATURE_HEADERS = ("X-Plivo-Signature-V3", "X-Plivo-Signature-Ma-V3")
V3_NONCE_HEADER = "X-Plivo-Signature-V3-Nonce"
V2_SIGNATURE_HEADERS = ("X-Plivo-Signature-V2", "X-Plivo-Signature-Ma-V2")
V2_NONCE_HEADER = "X-Plivo-Signature-V2-Nonce"

#: Default V2_NONCE_TTL: how long a V2 nonce is remembered against replays (seconds).
V2_NONCE_TTL = 7 * 24 * 3600

#: Time fields of a callback, each the moment a stage was reached.
TIME_FIELDS = ("MessageTime", "QueuedTime", "SentTime", "DeliveryReportTime")
#: The field that dates each status; other statuses use the latest time present.
_STATUS_TIME_FIELD = {
    "queued": ("QueuedTime", "MessageTime"),
    "sent": ("SentTime",),
    "delivered": ("DeliveryReportTime",),
    "undelivered": ("DeliveryReportTime",),
}

_AUTH_ID = re.compile(r"^[MS]A[A-Z0-9]{18}$")


def parse_plivo_time(value: str) -> datetime | None:
    """A callback time (``YYYY-mm-dd HH:MM:SS.ffffff``) as an aware UTC datetime.

    Plivo's callback docs give the format but not the zone. We read a value without an offset as
    UTC: Plivo's Message API takes its time filters "in UTC time zone", and a public capture of
    a ``queued`` callback has a ``QueuedTime`` 0.3 s before the receiver's own UTC clock. A value
    with an offset (as Plivo's MDR API returns, ``...+05:30``) is converted to UTC. Anything else
    gives ``None`` (the text stays in the raw payload).
    """
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (AttributeError, TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass
class PlivoOptions(ProviderOptions):
    """``SMS_DELIVERY["PROVIDERS"]["plivo"]``."""

    #: One or several, for rotation: the main account's token verifies every subaccount's
    #: callbacks through the ``-Ma-`` headers; a subaccount's token verifies its own.
    auth_tokens: list[str] = field(default_factory=list)
    #: The main account's Auth ID (``MA…``): callbacks do not carry it; it is checked for typos
    #: and documents which account the tokens belong to.
    auth_id: str = ""
    #: Accept a request that carries only V2 headers (V2 does not sign the body; see
    #: :meth:`PlivoProvider._check_v2_nonce` for what turning it on costs).
    accept_v2_signatures: bool = False
    #: The Django cache alias that remembers V2 nonces.
    v2_nonce_cache: str = "default"
    #: Seconds a V2 nonce is remembered.
    v2_nonce_ttl: int = V2_NONCE_TTL
    #: ``send_sms``'s sender (``src``) when it names none: a number or sender id.
    default_sender: str = ""

    def __post_init__(self):
        self.auth_tokens = secret_list(self.auth_tokens)


class PlivoProvider(BaseProvider[PlivoOptions]):
    """Plivo status callbacks at ``/webhooks/plivo/status/`` (POST form or GET query), and
    incoming messages at ``/webhooks/plivo/inbound/`` (the application's ``message_url``).

    Options: :class:`PlivoOptions`.
    """

    name = "plivo"
    Options = PlivoOptions
    # Status -> canonical. Plivo documents queued, sent, failed, delivered, undelivered and read
    # (WhatsApp only) (message-status-callbacks); an older version of the page also listed
    # rejected. Inbound states (received) never belong in an outbound status callback.
    statuses = {
        "queued": Status.ACCEPTED,  # accepted by Plivo and queued for sending
        "sent": Status.SENT,  # handed to a downstream carrier; may stay final (no DLR)
        "delivered": Status.DELIVERED,  # the carrier's delivery report says delivered
        "undelivered": Status.UNDELIVERED,  # the carrier's delivery report says not delivered
        "failed": Status.FAILED,  # Plivo could not pass it to a carrier
        "read": Status.READ,  # WhatsApp read receipt
        "rejected": Status.REJECTED,  # listed by an older version of the callback docs
    }
    errors = PLIVO_ERRORS

    def account(self, request: WebhookRequest) -> str:
        # Plivo's status callbacks name no account (no Auth ID field or header is documented).
        return ""

    # -- authenticity ---------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        """V3 when any V3 header is present (never falling back to V2 then), else V2.

        V3 signs the URL, the parameters and a nonce; V2 signs only the URL without its query and
        a nonce, so a V2 signature does not prove the body is Plivo's. A request whose V3
        signature fails is rejected even if it also carries valid V2 headers.
        """
        tokens = self.options.auth_tokens
        if not tokens:
            raise SignatureInvalid("No Plivo auth token configured.")
        v3 = _signatures(request, V3_SIGNATURE_HEADERS)
        if v3:
            nonce = request.header(V3_NONCE_HEADER)
            if not nonce:
                raise SignatureInvalid(f"Missing {V3_NONCE_HEADER} header.")
            if not _v3_matches(request, nonce, v3, tokens):
                raise SignatureInvalid("X-Plivo-Signature-V3 does not match.")
            return
        v2 = _signatures(request, V2_SIGNATURE_HEADERS)
        if v2:
            if not self.options.accept_v2_signatures:
                raise SignatureInvalid("Only a V2 signature was sent and V2 is not accepted.")
            nonce = request.header(V2_NONCE_HEADER)
            if not nonce:
                raise SignatureInvalid(f"Missing {V2_NONCE_HEADER} header.")
            if not _v2_matches(request, nonce, v2, tokens):
                raise SignatureInvalid("X-Plivo-Signature-V2 does not match.")
            self._check_v2_nonce(nonce, request)
            logger.debug("plivo callback verified with a V2 signature (body not covered)")
            return
        raise SignatureInvalid("Missing X-Plivo-Signature-V3 (or -V2) header.")

    def _check_v2_nonce(self, nonce: str, request: WebhookRequest) -> None:
        """Refuse a V2 nonce already seen with a different request (a replayed signature).

        A V2 signature covers the URL without its query and the nonce, not the body: anyone who
        saw one signed request could send any body with its headers. So each nonce is remembered
        (``V2_NONCE_CACHE``, for ``V2_NONCE_TTL`` seconds) with a digest of the URL and body it
        came with; the same nonce with the same request again is a redelivery (a duplicate,
        harmless), with anything else it is a replay. The cache must be shared by every worker
        (Redis, Memcached or the database cache, not the local-memory one): check W003 says so.
        A replay of a request older than the TTL is not caught.
        """
        alias = self.options.v2_nonce_cache
        if alias not in settings.CACHES:
            raise ConfigurationError(f"V2_NONCE_CACHE {alias!r} is not in settings.CACHES.")
        cache = caches[alias]
        key = "sms_delivery:plivo:v2-nonce:" + hashlib.sha256(nonce.encode()).hexdigest()
        digest = hashlib.sha256(request.url.encode() + b"\n" + request.body).hexdigest()
        try:
            if cache.add(key, digest, self.options.v2_nonce_ttl):
                return
            seen = cache.get(key)
        except Exception as exc:  # a cache outage: retry later rather than accept unchecked
            raise StorageUnavailable() from exc
        if seen is not None and seen != digest:
            raise SignatureInvalid("X-Plivo-Signature-V2-Nonce was already used (replay).")

    # -- parsing --------------------------------------------------------------------------

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        request.require_utf8()
        params = request.form
        uuid = params.get("MessageUUID", "").strip()
        if not uuid:
            raise MalformedPayload("MessageUUID is missing.")
        raw_status = params.get("Status", "").strip()
        if not raw_status:
            raise MalformedPayload("Status is missing.")
        error_code = _error_code(params.get("ErrorCode", ""))
        sequence = params.get("Sequence", "").strip()
        return [
            NormalizedEvent(
                provider=self.name,
                provider_message_id=uuid,
                raw_status=raw_status,
                status=self.map_status(raw_status),
                provider_occurred_at=_occurred_at(raw_status, params),
                error_code=error_code,
                error_category=self.errors.category(error_code),
                recipient=with_plus(params.get("To", "")),
                sender_identity=params.get("From") or params.get("PowerpackUUID", ""),
                segments=int_or_none(params.get("Units")),
                raw_payload=form_fields(params),
                # Sequence numbers the callbacks Plivo generated for one message; a redelivery of
                # a callback repeats it, a new report gets the next one.
                dedupe_parts=(f"seq={sequence}",) if sequence else (),
            )
        ]

    # -- inbound messages (opt-out keywords) -----------------------------------------------
    # Plivo calls the message_url of the application linked to the number, with message_method
    # (POST form fields by default, or GET query), signed like every other Plivo request:
    # https://www.plivo.com/docs/messaging/api/message/handling-incoming,
    # https://docs.plivo.com/docs/account/api/application/create-an-application (message_method),
    # https://docs.plivo.com/docs/voice/xml/request/validation ("message_url" is signed with V3).
    # Fields: MessageUUID, From, To (digits, no "+"), Type (sms / mms / whatsapp), Text (SMS),
    # Body (MMS and WhatsApp), MessageIntent (optout / optin / help when the text is one of
    # Plivo's standard keywords; long codes and toll-free only), Units, TotalRate, TotalAmount,
    # PowerpackUUID, MediaCount / Media<n> (MMS), ContentType / MimeType (WhatsApp), ErrorCode.

    receives_inbound = True
    _MESSAGE_INTENTS = {
        "optout": ("STOP", ConsentChange.OPT_OUT),
        "optin": ("START", ConsentChange.OPT_IN),
        "help": ("HELP", ConsentChange.HELP),
    }
    #: The answer to an incoming message: Plivo XML that sends no reply. Plivo "expects an XML
    #: response" from the message_url, with Content-Type text/xml or application/xml, and replies
    #: only when it holds a <Message> (https://plivo.com/docs/messaging/xml/request/messages,
    #: https://plivo.com/docs/messaging/xml/response). Equivalent to the SDK's empty
    #: ``plivoxml.ResponseElement().to_string()``. Plivo's own receive-SMS example
    #: (plivo-examples-python sms/receive_sms.py) answers plain text, so Plivo acts only on a
    #: <Message> it finds; how it treats an empty <Response> beyond that is unconfirmed.
    INBOUND_RESPONSE = "<Response></Response>"

    def parse_inbound(self, request: WebhookRequest) -> list[InboundEvent]:
        request.require_utf8()
        params = request.form
        uuid = params.get("MessageUUID", "").strip()
        sender = params.get("From", "").strip()
        if not uuid or not sender:
            raise MalformedPayload("MessageUUID or From is missing.")
        # SMS carries its text in Text, MMS and WhatsApp in Body.
        text = params.get("Text") or params.get("Body") or ""
        keyword, consent = keyword_of(text)
        intent = params.get("MessageIntent", "").strip().lower()
        if intent in self._MESSAGE_INTENTS:
            # Plivo matched one of its standard keywords, which may be one our list lacks.
            intent_keyword, consent = self._MESSAGE_INTENTS[intent]
            keyword = keyword or intent_keyword
        return [
            InboundEvent(
                provider=self.name,
                provider_message_id=uuid,
                sender=with_plus(sender),
                # As Plivo writes it, like the From (sender identity) of our outbound messages.
                our_identity=params.get("To", "").strip(),
                keyword=keyword,
                consent=consent,
                raw_payload=form_fields(params),
            )
        ]

    def inbound_response(self, stored: int) -> HttpResponse:
        """Empty Plivo XML: Plivo acknowledges the message and sends no reply."""
        return HttpResponse(self.INBOUND_RESPONSE, content_type="application/xml")

    # -- reconciliation ---------------------------------------------------------------------
    # GET /v1/Account/{auth_id}/Message/{message_uuid}/ through the SDK (``messages.get``):
    # https://www.plivo.com/docs/messaging/api/messages ("The Message Object": message_state,
    # error_code "000" for success, units). The object has no time of its last status change.

    can_poll = True

    def fetch_status(self, provider_message_id: str) -> list[NormalizedEvent]:
        auth_id, tokens = self.options.auth_id, self.options.auth_tokens
        if not (auth_id and tokens):
            raise PollFailed("AUTH_ID and AUTH_TOKENS are needed to ask Plivo's API.")
        try:
            client = plivo.RestClient(auth_id, tokens[0], timeout=POLL_TIMEOUT)
            found = client.messages.get(message_uuid=provider_message_id)
        except ResourceNotFoundError as exc:
            raise MessageNotFound(f"Plivo knows no message {provider_message_id}.") from exc
        except PlivoRestError as exc:
            # The SDK names the status only in its message ("Received status code 429 …").
            if "429" in str(exc):
                raise RateLimited("Plivo API: too many requests (429).") from exc
            raise PollFailed(f"Plivo API refused the request ({type(exc).__name__}).") from exc
        except requests.RequestException as exc:  # timeouts, refused connections
            raise PollFailed(f"Plivo API unreachable ({type(exc).__name__}).") from exc
        raw_status = str(getattr(found, "message_state", "") or "")
        code = _error_code(str(getattr(found, "error_code", "") or ""))
        return [
            NormalizedEvent(
                provider=self.name,
                provider_message_id=provider_message_id,
                raw_status=raw_status,
                status=self.map_status(raw_status),
                error_code=code,
                error_category=self.errors.category(code),
                segments=int_or_none(getattr(found, "units", None)),
                raw_payload={
                    "message_uuid": provider_message_id,
                    "message_state": raw_status,
                    "error_code": code,
                    "message_time": str(getattr(found, "message_time", "") or ""),
                    "units": getattr(found, "units", None),
                },
                source=EventSource.POLL,
            )
        ]

    # -- sending ------------------------------------------------------------------------------
    # POST /v1/Account/{auth_id}/Message/ through the SDK (``messages.create``):
    # https://www.plivo.com/docs/messaging/api/message/send-a-message. ``url`` is where Plivo
    # sends the message's status callbacks; the answer names the message in ``message_uuid``.

    can_send = True
    #: The SDK's errors and the HTTP status each stands for (it raises one class per status).
    _REFUSALS = {
        ValidationError: 400,
        AuthenticationError: 401,
        ForbiddenError: 403,
        ResourceNotFoundError: 404,
        InvalidRequestError: 422,
        PlivoServerError: 500,
    }

    def send_problem(self) -> str | None:
        if self.options.auth_id and self.options.auth_tokens:
            return None
        return "AUTH_ID and AUTH_TOKENS are needed to send with Plivo."

    def send(self, outgoing: Outgoing) -> Sent:
        if problem := self.send_problem():
            raise ConfigurationError(problem)
        client = plivo.RestClient(
            self.options.auth_id, self.options.auth_tokens[0], timeout=SEND_TIMEOUT
        )
        try:
            answer = client.messages.create(
                src=outgoing.sender or None,
                dst=outgoing.to.removeprefix("+"),
                text=outgoing.body,
                url=outgoing.status_callback,
                method="POST",
                **outgoing.options,
            )
        except PlivoRestError as exc:
            status = next((s for c, s in self._REFUSALS.items() if isinstance(exc, c)), None)
            raise SendRefused(
                f"Plivo API refused the send ({type(exc).__name__}: {mask_text(str(exc))}).",
                http_status=status,
            ) from exc
        except requests.RequestException as exc:  # timeouts, refused or dropped connections
            raise SendUnanswered(f"Plivo API did not answer ({type(exc).__name__}).") from exc
        uuids = getattr(answer, "message_uuid", None) or []
        if not uuids:
            raise SendUnanswered("Plivo API answered without a message_uuid.")
        return Sent(
            provider_message_id=str(uuids[0]), raw_status="queued", sender_identity=outgoing.sender
        )

    def default_sender(self) -> str:
        return self.options.default_sender

    def missing_credentials(self) -> str | None:
        if self.options.auth_tokens:
            return None
        return "has no AUTH_TOKENS; every Plivo callback would be rejected"

    def configuration_errors(self) -> list[str]:
        tokens = self.options.auth_tokens
        problems = []
        if self.options.v2_nonce_cache not in settings.CACHES:
            problems.append(
                f"has V2_NONCE_CACHE {self.options.v2_nonce_cache!r}, which settings.CACHES does "
                "not define"
            )
        if any(_AUTH_ID.match(token) for token in tokens):
            problems.append(
                "has an Auth ID (MA…/SA…) in AUTH_TOKENS; it needs the Auth Token shown next to it"
            )
        auth_id = self.options.auth_id
        if auth_id and not _AUTH_ID.match(auth_id):
            problems.append(f"has AUTH_ID {auth_id[:4]!r}…, which is not a Plivo Auth ID (MA…/SA…)")
        return problems

    def configuration_warnings(self) -> list[str]:
        if not self.options.accept_v2_signatures:
            return []
        alias = self.options.v2_nonce_cache
        warning = (
            "accepts V2 signatures (ACCEPT_V2_SIGNATURES), which do not cover the body: a "
            f"captured request's headers could carry a forged body. Nonces are remembered in the "
            f"{alias!r} cache to refuse such replays"
        )
        backend = settings.CACHES.get(alias, {}).get("BACKEND", "")
        if backend.endswith(("DummyCache", "LocMemCache")):
            warning += (
                f", but that cache is {backend.rsplit('.', 1)[-1]}, which remembers nothing "
                "across workers (or nothing at all)"
            )
        return [warning]


def _signatures(request: WebhookRequest, headers: tuple[str, ...]) -> list[str]:
    """The non-empty signature headers, whitespace removed (Base64 never contains any)."""
    values = ("".join(request.header(name).split()) for name in headers)
    return [value for value in values if value]


def _v3_matches(
    request: WebhookRequest, nonce: str, signatures: list[str], tokens: list[str]
) -> bool:
    method = request.method.upper()
    if method not in ("GET", "POST"):
        return False
    # GET: the parameters are in the URL's query and the SDK reads them from there. POST: the
    # form fields, repeated ones as lists (the SDK signs each value, sorted).
    params = None if method == "GET" else dict(request.form.lists())
    for token in tokens:
        for signature in signatures:
            try:
                if validate_v3_signature(
                    method,
                    request.url,
                    nonce,
                    token,
                    signature,
                    dict(params) if params is not None else None,
                ):
                    return True
            except (ValidationError, UnicodeError, ValueError, TypeError):
                # The SDK rejects arguments it cannot use (and fails on a URL it cannot encode).
                return False
    return False


def _v2_matches(
    request: WebhookRequest, nonce: str, signatures: list[str], tokens: list[str]
) -> bool:
    # The SDK's V2 check compares one signature; a header may list several (one per token).
    candidates = [part for value in signatures for part in value.split(",") if part]
    return any(
        validate_signature(request.url, nonce, signature, token)
        for token in tokens
        for signature in candidates
    )


def _error_code(value: str) -> str:
    """Plivo's code as sent, or "" for none (``000`` means success on Plivo's MDRs)."""
    value = (value or "").strip()
    return "" if not value or value.strip("0") == "" else value


def _occurred_at(raw_status: str, params) -> datetime | None:
    """The time of the stage this callback reports (see ``_STATUS_TIME_FIELD``).

    ``failed``, ``read``, ``rejected`` and unknown statuses have no documented time of their own;
    they get the latest stage time present, a lower bound of the event's own time.
    """
    for name in _STATUS_TIME_FIELD.get(raw_status.lower(), ()):
        when = parse_plivo_time(params.get(name, ""))
        if when:
            return when
    times = [parse_plivo_time(params.get(name, "")) for name in TIME_FIELDS]
    return max((when for when in times if when), default=None)
