"""Twilio Programmable Messaging status callbacks (SMS, MMS, WhatsApp).

Verified with the ``twilio`` SDK's ``RequestValidator`` over the exact URL Twilio called, and
mapped from ``MessageStatus`` to the canonical lifecycle. Sources:
https://www.twilio.com/docs/messaging/guides/track-outbound-message-status,
https://www.twilio.com/docs/messaging/api/message-resource#message-status-values,
https://www.twilio.com/docs/usage/webhooks/webhooks-security (see ../shared/providers.md §1).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import requests
from django.http import HttpResponse
from django.utils.datastructures import MultiValueDict
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    add_port,
    compare,
    get_signature_algorithm,
    remove_port,
)

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
)
from delivery.lifecycle import Status
from delivery.masking import get_logger, mask_text
from delivery.outgoing import Outgoing, Sent

from .fields import form_fields, int_or_none, text_field
from .twilio_errors import TWILIO_ERRORS

logger = get_logger(__name__)

#: A Messaging Service SID: sent as MessagingServiceSid, not From ("MGM Grand" is a sender id).
MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")


_DONE_DATE = re.compile(r"[0-9]{10}")


def parse_raw_dlr_done_date(value: str) -> datetime | None:
    """``RawDlrDoneDate`` (``YYMMDDhhmm``, the carrier's DLR "done date") as an aware datetime.

    Twilio passes it through from the carrier without a zone, and says the offset varies
    between carriers; we read it as UTC and treat it as an untrusted hint. A malformed value
    gives ``None`` (it stays in the raw payload): ten digits exactly (``strptime`` alone would
    read ``261201120`` as a date).
    """
    if not isinstance(value, str) or not _DONE_DATE.fullmatch(value):
        return None
    try:
        return datetime.strptime(value, "%y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None


def _signed(
    validator: RequestValidator,
    url: str,
    params: dict | MultiValueDict,
    signature: str,
    algorithm: str,
) -> bool:
    """The SDK's ``validate``, one HMAC instead of two for the usual callback: ``validate``
    computes the signature over the URL with and without its port (Twilio signs one or the
    other); when the URL as called is one of those two, it is tried first, and the other only
    if it does not match."""
    if algorithm.upper() in (HMAC_SHA1, HMAC_SHA256):
        parsed = urlparse(url)
        if url in (remove_port(parsed), add_port(parsed)) and compare(
            validator.compute_signature(url, params, algorithm), signature
        ):
            return True
    return validator.validate(url, params, signature, algorithm)


def _json_body(request: WebhookRequest) -> bool:
    """A POST with a JSON body (a GET's body is never read)."""
    return request.method != "GET" and request.content_type == "application/json"


def _signed_body_hash(request: WebhookRequest) -> str:
    """The ``bodySHA256`` of the signed URL as the SDK reads it (the first value not blank)."""
    return parse_qs(urlparse(request.url).query).get("bodySHA256", [""])[0]


def _check_body_hash(request: WebhookRequest) -> None:
    """The hash of the bytes received: the SDK hashes the body as text encoded to UTF-8, other
    bytes when it is not UTF-8 (a signed request to keep for review, not a forgery)."""
    if not compare(hashlib.sha256(request.body).hexdigest(), _signed_body_hash(request)):
        raise SignatureInvalid("The body does not match bodySHA256 in the signed URL.")


@dataclass
class TwilioOptions(ProviderOptions):
    """``SMS_DELIVERY["PROVIDERS"]["twilio"]``."""

    account_sid: str = ""  #: the main account (its callbacks carry it as AccountSid)
    #: One token, a comma-separated string or a list; any of them verifies (rotation).
    auth_tokens: list[str] = field(default_factory=list)
    #: ``{"AC…": ["token", …]}``: tokens of subaccounts, chosen by the callback's AccountSid.
    subaccounts: dict[str, list[str]] = field(default_factory=dict)
    #: ``{"key id": "secret"}``: webhooks signed with a SharedKey, announced by
    #: ``X-Twilio-Webhooks-Signature-Settings``.
    shared_keys: dict[str, str] = field(default_factory=dict)
    #: ``send_sms``'s sender when it names none: a number, short code or Messaging Service SID.
    default_sender: str = ""
    #: Connection overrides added to the status callback URL ``send_sms`` gives Twilio (a
    #: fragment, not signed): three retries on connection failures, timeouts and 5xx, where
    #: Twilio's default is one retry on connection failures only
    #: (https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides).
    callback_overrides: str = "rc=3&rp=ct,rt,5xx"

    def __post_init__(self):
        self.auth_tokens = secret_list(self.auth_tokens)
        self.subaccounts = {sid: secret_list(tokens) for sid, tokens in self.subaccounts.items()}
        self.shared_keys = {key: secret for key, secret in self.shared_keys.items() if secret}


class TwilioProvider(BaseProvider[TwilioOptions]):
    """Twilio status callbacks at ``/webhooks/twilio/status/``.

    Options: :class:`TwilioOptions`.
    """

    name = "twilio"
    Options = TwilioOptions
    # MessageStatus -> canonical. Twilio documents exactly these 13 values (message-resource).
    statuses = {
        "accepted": Status.ACCEPTED,  # Messaging Service picked no sender yet
        "scheduled": Status.ACCEPTED,  # scheduled for later
        "queued": Status.ACCEPTED,  # queued at Twilio
        "sending": Status.ACCEPTED,  # being dispatched to the carrier, not yet accepted by it
        "sent": Status.SENT,  # the nearest upstream carrier accepted it
        "delivered": Status.DELIVERED,  # carrier or handset confirmed delivery
        "read": Status.READ,  # WhatsApp / RCS read receipt
        "undelivered": Status.UNDELIVERED,  # the carrier's receipt says not delivered
        "failed": Status.FAILED,  # Twilio could not send it
        "canceled": Status.FAILED,  # a scheduled message was canceled before sending
        # "partially_delivered" is deprecated and "receiving"/"received" describe inbound
        # messages: none belongs in an outbound status callback, so they map to UNKNOWN and
        # the message lands in the review queue.
    }
    errors = TWILIO_ERRORS

    def account(self, request: WebhookRequest) -> str:
        try:
            return text_field(self._params(request), "AccountSid")
        except MalformedPayload:
            return ""

    # -- authenticity ---------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        signature = request.header(SIGNATURE_HEADER)
        if not signature:
            raise SignatureInvalid("Missing X-Twilio-Signature header.")
        settings_header = request.header(SIGNATURE_SETTINGS_HEADER)
        algorithm = get_signature_algorithm(settings_header)
        secrets = self._shared_key(settings_header) if settings_header else self._tokens(request)
        if not secrets:
            raise SignatureInvalid("No Twilio credential configured for this request.")
        params = self._signed_params(request)
        if not any(
            _signed(RequestValidator(secret), request.url, params, signature, algorithm)
            for secret in secrets
        ):
            raise SignatureInvalid("X-Twilio-Signature does not match.")
        if _json_body(request):
            _check_body_hash(request)

    @staticmethod
    def _signed_params(request: WebhookRequest) -> dict | MultiValueDict:
        """What Twilio signed besides the URL (webhooks-security):

        - GET: nothing; the parameters are already in the signed URL's query string;
        - JSON: nothing either, but the URL carries ``bodySHA256``, the SHA-256 of the body
          (:func:`_check_body_hash`); without it the body is not covered at all: refused;
        - form POST: every parameter, sorted.
        """
        if _json_body(request):
            if not _signed_body_hash(request):
                raise SignatureInvalid("JSON body without bodySHA256 in the URL is not signed.")
            return {}
        return {} if request.method == "GET" else request.form

    def _tokens(self, request: WebhookRequest) -> list[str]:
        subaccounts = self.options.subaccounts  # the request's account read only if it matters
        return (subaccounts and subaccounts.get(self.account(request))) or self.options.auth_tokens

    def _shared_key(self, settings_header: str) -> list[str]:
        key_id = ""
        for part in settings_header.split(","):
            name, _, value = part.partition("=")
            if name.strip() == "key":
                key_id = value.strip()
        secret = self.options.shared_keys.get(key_id)
        return [secret] if secret else []

    # -- parsing --------------------------------------------------------------------------

    def _params(self, request: WebhookRequest):
        """The callback's fields: the query string of a GET (what its signature covers), the
        JSON object of a JSON POST, else the form fields."""
        if _json_body(request):
            data = request.json
            if not isinstance(data, dict):
                raise MalformedPayload("JSON body is not an object.")
            return data
        return request.form

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        request.require_utf8()
        params = self._params(request)
        sid = text_field(params, "MessageSid", "SmsSid")
        if not sid:
            raise MalformedPayload("MessageSid is missing.")
        raw_status = text_field(params, "MessageStatus", "SmsStatus")
        if not raw_status:
            raise MalformedPayload("MessageStatus is missing.")
        error_code = text_field(params, "ErrorCode")
        error_code = "" if error_code == "0" else error_code
        return [
            NormalizedEvent(
                provider=self.name,
                provider_message_id=sid,
                raw_status=raw_status,
                status=self.map_status(raw_status),
                provider_occurred_at=parse_raw_dlr_done_date(text_field(params, "RawDlrDoneDate")),
                error_code=error_code,
                error_category=self.errors.category(error_code),
                error_detail=text_field(params, "ErrorMessage", "ChannelStatusMessage"),
                recipient=text_field(params, "ChannelToAddress", "To"),
                sender_identity=text_field(params, "From", "MessagingServiceSid"),
                segments=int_or_none(params.get("NumSegments")),
                raw_payload=form_fields(params),
            )
        ]

    # -- reconciliation ---------------------------------------------------------------------
    # GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json through the SDK
    # (``messages(sid).fetch()``): https://www.twilio.com/docs/messaging/api/message-resource
    # #fetch-a-message-resource. Twilio suggests it for a message with no final status 12 hours
    # on (https://www.twilio.com/docs/messaging/guides/outbound-message-logging).

    can_poll = True

    def fetch_status(self, provider_message_id: str) -> list[NormalizedEvent]:
        """The message resource's status, via the main account's credentials (which may read
        the subaccounts' messages too: each one in SUBACCOUNTS is tried after a 404)."""
        token = self.options.auth_tokens[0] if self.options.auth_tokens else ""
        if not (self.options.account_sid and token):
            raise PollFailed("ACCOUNT_SID and AUTH_TOKENS are needed to ask Twilio's API.")
        client = _client(self.options.account_sid, token, POLL_TIMEOUT)
        for account in [self.options.account_sid, *self.options.subaccounts]:
            try:
                found = client.api.v2010.accounts(account).messages(provider_message_id).fetch()
            except TwilioRestException as exc:
                if exc.status == 404:
                    continue
                if exc.status == 429:
                    raise RateLimited("Twilio API: too many requests (429).") from exc
                raise PollFailed(f"Twilio API answered {exc.status} (error {exc.code}).") from exc
            except requests.RequestException as exc:  # timeouts, refused connections
                raise PollFailed(f"Twilio API unreachable ({type(exc).__name__}).") from exc
            return [self._polled(provider_message_id, found)]
        raise MessageNotFound(f"Twilio knows no message {provider_message_id}.")

    def _polled(self, sid: str, found) -> NormalizedEvent:
        raw_status = str(found.status or "")
        code = str(found.error_code) if found.error_code not in (None, 0, "0", "") else ""
        occurred = found.date_updated
        return NormalizedEvent(
            provider=self.name,
            provider_message_id=sid,
            raw_status=raw_status,
            status=self.map_status(raw_status),
            provider_occurred_at=occurred.astimezone(UTC) if occurred else None,
            error_code=code,
            error_category=self.errors.category(code),
            error_detail=str(found.error_message or ""),
            segments=int_or_none(found.num_segments),
            # What the API said, without the numbers or the text (the payload is kept).
            raw_payload={
                "sid": sid,
                "status": raw_status,
                "error_code": code,
                "error_message": found.error_message,
                "date_sent": str(found.date_sent or ""),
                "date_updated": str(occurred or ""),
                "num_segments": found.num_segments,
            },
            source=EventSource.POLL,
        )

    # -- sending ------------------------------------------------------------------------------
    # POST /2010-04-01/Accounts/{AccountSid}/Messages.json through the SDK
    # (``messages.create``): https://www.twilio.com/docs/messaging/api/message-resource
    # #create-a-message-resource. A sender starting with "MG" is a Messaging Service.

    can_send = True

    def send_problem(self) -> str | None:
        if self.options.account_sid and self.options.auth_tokens:
            return None
        return "ACCOUNT_SID and AUTH_TOKENS are needed to send with Twilio."

    def send(self, outgoing: Outgoing) -> Sent:
        if problem := self.send_problem():
            raise ConfigurationError(problem)
        client = _client(self.options.account_sid, self.options.auth_tokens[0], SEND_TIMEOUT)
        sender = outgoing.sender
        is_service = MESSAGING_SERVICE_SID.fullmatch(sender)
        who = {"messaging_service_sid": sender} if is_service else {"from_": sender}
        try:
            created = client.messages.create(
                to=outgoing.to,
                body=outgoing.body,
                status_callback=outgoing.status_callback,
                **who,
                **outgoing.options,
            )
        except TwilioRestException as exc:
            raise SendRefused(
                f"Twilio API answered {exc.status} (error {exc.code}): {mask_text(exc.msg)}",
                code=str(exc.code or ""),
                http_status=exc.status,
            ) from exc
        except requests.RequestException as exc:  # timeouts, refused or dropped connections
            raise SendUnanswered(f"Twilio API did not answer ({type(exc).__name__}).") from exc
        return Sent(
            provider_message_id=str(created.sid),
            raw_status=str(created.status or "queued"),
            sender_identity=str(created.from_ or created.messaging_service_sid or sender),
            segments=int_or_none(created.num_segments),
        )

    def default_sender(self) -> str:
        return self.options.default_sender

    def callback_fragment(self) -> str:
        return self.options.callback_overrides

    # -- inbound messages (opt-out keywords) -----------------------------------------------
    # https://www.twilio.com/docs/messaging/guides/webhook-request: From, To, Body, MessageSid;
    # OptOutType (STOP / START / HELP) when the Messaging Service has Advanced Opt-Out on, which
    # also covers keywords the service was configured with.

    receives_inbound = True
    _OPT_OUT_TYPES = {
        "STOP": ConsentChange.OPT_OUT,
        "START": ConsentChange.OPT_IN,
        "HELP": ConsentChange.HELP,
    }

    def parse_inbound(self, request: WebhookRequest) -> list[InboundEvent]:
        request.require_utf8()
        params = self._params(request)
        sid = text_field(params, "MessageSid", "SmsSid")
        sender = text_field(params, "From")
        if not sid or not sender:
            raise MalformedPayload("MessageSid or From is missing.")
        keyword, consent = keyword_of(text_field(params, "Body"))
        opt_out_type = text_field(params, "OptOutType").upper()
        if opt_out_type in self._OPT_OUT_TYPES:
            keyword, consent = keyword or opt_out_type, self._OPT_OUT_TYPES[opt_out_type]
        return [
            InboundEvent(
                provider=self.name,
                provider_message_id=sid,
                sender=sender,
                our_identity=text_field(params, "To"),
                keyword=keyword,
                consent=consent,
                raw_payload=form_fields(params),
            )
        ]

    def inbound_response(self, stored: int) -> HttpResponse:
        """Empty TwiML: Twilio expects XML from an incoming-message webhook; no reply is sent."""
        return HttpResponse(
            '<?xml version="1.0" encoding="UTF-8"?><Response/>', content_type="text/xml"
        )

    def missing_credentials(self) -> str | None:
        if self.options.auth_tokens or self.options.subaccounts:
            return None
        return "has no AUTH_TOKENS; every Twilio callback would be rejected"


def _client(account_sid: str, token: str, timeout: float):
    """Twilio's REST client, imported on first use: webhooks need only its RequestValidator,
    and the REST package weighs on every worker's memory and start-up."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    return Client(account_sid, token, http_client=TwilioHttpClient(timeout=timeout))
