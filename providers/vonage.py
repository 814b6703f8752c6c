"""Vonage: SMS API delivery receipts and inbound SMS, Messages API status webhooks and inbound.

Delivery reports of both products go to ``/webhooks/vonage/status/``, messages people send us to
``/webhooks/vonage/inbound/``. Which product sent a request is told by its content: an
``Authorization: Bearer`` token or a JSON object with ``message_uuid`` is the Messages API
(handled in :mod:`providers.vonage_messages`); anything else is the SMS API. Sources (see
../shared/providers.md §2 and docs/providers/vonage.md):

- SMS API DLRs (GET query, POST form or POST JSON, chosen in the dashboard): fields in
  https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts; the optional ``sig``
  is checked with vonage-http-client's ``Auth.check_signature`` as
  https://developer.vonage.com/en/getting-started/concepts/signing-messages describes.
- SMS API inbound messages (GET or POST): fields in
  https://developer.vonage.com/en/messaging/sms/guides/inbound-sms; signed with the same ``sig``
  ("the webhooks for both incoming SMS and delivery receipts will include a sig parameter",
  signing-messages page).
- Messages API status webhooks and inbound messages (POST JSON, signed bearer JWT): see
  :mod:`providers.vonage_messages`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from vonage_http_client.auth import Auth

from delivery.adapters import BaseProvider, ProviderOptions, WebhookRequest, secret_list
from delivery.events import InboundEvent, NormalizedEvent, keyword_of
from delivery.exceptions import ConfigurationError, MalformedPayload, SignatureInvalid
from delivery.lifecycle import Status

from . import vonage_messages as messages
from .fields import form_fields, with_plus
from .vonage_errors import VONAGE_ERRORS
from .vonage_messages import is_json as _is_json
from .vonage_messages import text_of as _text

#: The ``signature_method`` names vonage-http-client's ``Auth`` accepts (all HMAC), with the
#: length of their hex digest: without SIGNATURE_METHOD the method is read off the ``sig``.
HMAC_METHODS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_METHOD_BY_LENGTH = {length: method for method, length in HMAC_METHODS.items()}

#: Default SIGNATURE_MAX_AGE: longer than the longest documented retry window (DLRs are retried
#: for 72 h, support article 226572227). Whether a retry is re-signed with a new ``timestamp``
#: is not documented, so a shorter default could refuse, for good, a genuine late retry.
DEFAULT_MAX_AGE = 4 * 24 * 3600
#: How far in the future a signature time may be (clocks drift; PyJWT alone allows none).
CLOCK_SKEW = 300


def parse_message_timestamp(value: Any) -> datetime | None:
    """A DLR's ``message-timestamp`` (``YYYY-MM-DD HH:MM:SS``) as an aware UTC datetime.

    It is when Vonage started to push the receipt; Vonage's older DLR reference says it is UTC
    ("The time at UTC±00:00 when Nexmo started to push this Delivery Receipt"). ``scts``, the
    carrier's time, is not used: Vonage gives it no zone, and both published examples read as
    the carrier's local time (``scts`` 13:10 for a push at 12:10:29 UTC from a UK network in
    October). Missing or malformed: ``None``.
    """
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass
class VonageOptions(ProviderOptions):
    """``SMS_DELIVERY["PROVIDERS"]["vonage"]``."""

    #: The dashboard's signature secret; several during a rotation.
    signature_secrets: list[str] = field(default_factory=list)
    #: ``md5``, ``sha1``, ``sha256`` or ``sha512``: the HMAC chosen in the dashboard for SMS API
    #: signatures; unset, it is read off the length of ``sig``.
    signature_method: str | None = None
    #: ``{"api key": [secrets]}``, chosen by the request's API key.
    subaccounts: dict[str, list[str]] = field(default_factory=dict)
    #: Accept SMS API delivery receipts without ``sig``.
    unsigned_dlrs_allowed: bool = False
    #: Accept SMS API inbound messages without ``sig``: anyone could then opt numbers out or in.
    unsigned_inbound_allowed: bool = False
    #: Seconds a signature stays valid; ``None`` (or 0) turns the freshness check off.
    signature_max_age: int | None = DEFAULT_MAX_AGE

    def __post_init__(self):
        self.signature_secrets = secret_list(self.signature_secrets)
        self.subaccounts = {key: secret_list(values) for key, values in self.subaccounts.items()}


class VonageProvider(BaseProvider[VonageOptions]):
    """Vonage SMS API and Messages API: delivery reports and messages people send us.

    Options: :class:`VonageOptions`.
    """

    name = "vonage"
    Options = VonageOptions
    # SMS API DLR ``status`` -> canonical. delivery-receipts guide and support article
    # https://api.support.vonage.com/hc/en-us/articles/115007053127 (intermediate vs final).
    dlr_statuses = {
        "accepted": Status.SENT,  # the carrier accepted it; intermediate DLR
        "buffered": Status.SENT,  # held by the carrier for later delivery; intermediate
        "delivered": Status.DELIVERED,
        "expired": Status.EXPIRED,  # carrier retry window (or Vonage's 72 h) ran out
        "failed": Status.UNDELIVERED,  # "The target carrier failed to deliver this message"
        "rejected": Status.REJECTED,  # "Downstream carrier refuses to deliver message"
        "undelivered": Status.UNDELIVERED,  # older guide only; not in the SDKs' enums
        "unknown": Status.UNKNOWN,  # "No useful information available": review it
    }
    # Messages API ``status`` -> canonical. messages-status-callbacks page; Vonage Java SDK
    # ``MessageStatus.Status`` has exactly these five.
    messages_statuses = {
        "submitted": Status.SENT,  # passed on to the messaging provider / carrier
        "delivered": Status.DELIVERED,
        "read": Status.READ,  # WhatsApp, Viber, Messenger, RCS
        "rejected": Status.REJECTED,  # by Vonage or the provider, or TTL expired; has ``error``
        "undeliverable": Status.FAILED,  # Vonage could not reach the messaging provider
    }
    # The contract's one table (the two vocabularies agree where they overlap); parse() uses
    # the table of the product that sent the request.
    statuses = {**dlr_statuses, **messages_statuses}
    errors = VONAGE_ERRORS
    # Reconciliation: neither the SMS API nor the Messages API can be asked about one message.
    # The Reports API can (a synchronous records query by message id), but it is a separate
    # product with its own access; it is not used here.
    cannot_poll_because = (
        "Vonage's SMS and Messages APIs cannot be asked about a message (its Reports API can, "
        "and is not used here)"
    )

    def account(self, request: WebhookRequest) -> str:
        try:
            if self._is_messages(request):
                token = messages.bearer_token(request)
                return _text(messages.unverified_claims(token).get("api_key"))
            return _text(self._sms_params(request).get("api-key"))
        except (MalformedPayload, AttributeError, TypeError, ValueError):
            return ""

    # -- authenticity ---------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        """The same checks for delivery reports and inbound messages of each product."""
        if self._is_messages(request):
            messages.verify_token(request, self._secrets_for, self._check_age)
            return True
        return self._verify_sig(request)

    def _verify_sig(self, request: WebhookRequest) -> bool:
        """True when the signature matched; False for an unsigned request explicitly allowed."""
        try:
            params = self._sms_params(request)
        except MalformedPayload:
            params = {}
        signature = params.get("sig")
        if not signature:
            # Separate switches: an unsigned inbound message can change someone's consent.
            inbound = _is_inbound_endpoint(request)
            options = self.options
            if options.unsigned_inbound_allowed if inbound else options.unsigned_dlrs_allowed:
                return False
            what = "Inbound message" if inbound else "Delivery receipt"
            raise SignatureInvalid(
                f"{what} has no signature (sig); ask Vonage support to sign them."
            )
        if not isinstance(signature, str) or not signature.isascii():
            raise SignatureInvalid("Signature (sig) is not a hex digest.")
        if not params.get("timestamp"):
            raise SignatureInvalid("Signed request has no timestamp.")
        method = self._signature_method(signature)
        api_key = _text(params.get("api-key"))
        secrets = self._secrets_for(api_key)
        if not secrets:
            raise SignatureInvalid("No Vonage signature secret is configured.")
        # Auth insists on an API key beside a signature secret, but the key is not part of the
        # signature. check_signature pops ``sig`` and sign_params may add a timestamp: a copy.
        if not any(
            Auth(
                api_key=api_key or "unset", signature_secret=secret, signature_method=method
            ).check_signature(dict(params))
            for secret in secrets
        ):
            raise SignatureInvalid("Signature (sig) does not match any signature secret.")
        self._check_age(params.get("timestamp"), "timestamp")
        return True

    def _signature_method(self, signature: str) -> str:
        configured = self.options.signature_method
        if configured:
            method = str(configured).strip().lower()
            if method not in HMAC_METHODS:
                raise ConfigurationError(_method_problem(configured))
            return method
        by_length = _METHOD_BY_LENGTH.get(len(signature))
        if not by_length:
            raise SignatureInvalid("Signature (sig) is not an HMAC digest of a known length.")
        return by_length

    def _secrets_for(self, api_key: str) -> list[str]:
        """The secrets of ``api_key`` when SUBACCOUNTS lists it, else SIGNATURE_SECRETS."""
        if api_key and api_key in self.options.subaccounts:
            return self.options.subaccounts[api_key]
        return self.options.signature_secrets

    def _max_age(self) -> int | None:
        value = self.options.signature_max_age
        if value is None or value == 0:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigurationError(_MAX_AGE_PROBLEM.format(value=value))
        return value

    def _check_age(self, value: Any, name: str) -> None:
        """Refuse a signature older than SIGNATURE_MAX_AGE or too far in the future (replay).

        Vonage lists "Defend against interception and later replay" as a reason to sign and
        says to use the received ``timestamp``; neither SDK checks it, and no window is
        documented. A replayed genuine callback would only be a duplicate here, so the window
        is generous by default (see DEFAULT_MAX_AGE).
        """
        max_age = self._max_age()
        if max_age is None:
            return
        try:
            signed_at = int(value)
        except (TypeError, ValueError, OverflowError):
            raise SignatureInvalid(
                f"Signature time ({name}) is missing or not Unix time."
            ) from None
        now = time.time()
        if signed_at < now - max_age:
            raise SignatureInvalid(
                f"Signature is stale: {name} is {int(now - signed_at)} s old "
                f"(SIGNATURE_MAX_AGE is {max_age} s)."
            )
        if signed_at > now + CLOCK_SKEW:
            raise SignatureInvalid(
                f"Signature is stale: {name} is {int(signed_at - now)} s in the future."
            )

    # -- parsing --------------------------------------------------------------------------

    def _is_messages(self, request: WebhookRequest) -> bool:
        return messages.is_messages(request)

    def _sms_params(self, request: WebhookRequest) -> dict[str, Any]:
        """An SMS API request's fields, one value each (as Vonage signs them).

        MalformedPayload if unreadable.
        """
        if _is_json(request):
            data = request.json
            if not isinstance(data, dict):
                raise MalformedPayload("JSON body is not an object.")
            return data
        return request.form.dict()  # the query string for GET, the form body for POST

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        request.require_utf8()
        if self._is_messages(request):
            return [messages.parse_status(request, self.name, self.messages_statuses, self.errors)]
        return [self._parse_dlr(request)]

    def _parse_dlr(self, request: WebhookRequest) -> NormalizedEvent:
        params = self._sms_params(request)
        message_id = _text(params.get("messageId"))  # one per SMS part of a long message
        if not message_id:
            raise MalformedPayload("messageId is missing.")
        raw_status = _text(params.get("status"))
        if not raw_status:
            raise MalformedPayload("status is missing.")
        err_code = _text(params.get("err-code"))
        error_code = "" if err_code in ("", "0") else err_code  # 0 is "Delivered"
        return NormalizedEvent(
            provider=self.name,
            provider_message_id=message_id,
            raw_status=raw_status,
            status=self.dlr_statuses.get(raw_status.lower(), Status.UNKNOWN),
            provider_occurred_at=parse_message_timestamp(params.get("message-timestamp")),
            error_code=error_code,
            error_category=self.errors.category(error_code),
            recipient=with_plus(_text(params.get("msisdn"))),  # msisdn is the recipient
            sender_identity=_text(params.get("to")),  # and ``to`` is our sender id
            raw_payload=params if _is_json(request) else form_fields(request.form),
            # scts (the carrier's time, minute precision) tells two reports apart; it is kept
            # out of the event time (see parse_message_timestamp).
            dedupe_parts=(f"scts={_text(params.get('scts'))}",),
        )

    # -- inbound messages (opt-out keywords) -----------------------------------------------
    # SMS API: https://developer.vonage.com/en/messaging/sms/guides/inbound-sms (msisdn is the
    # person, ``to`` our number, messageId, text, type, keyword, message-timestamp, api-key,
    # concat-*). Messages API: providers.vonage_messages.parse_inbound. Either is verified by
    # verify() exactly as the product's delivery reports are.

    receives_inbound = True

    def parse_inbound(self, request: WebhookRequest) -> list[InboundEvent]:
        request.require_utf8()
        if self._is_messages(request):
            return [messages.parse_inbound(request, self.name)]
        return [self._parse_inbound_sms(request)]

    def _parse_inbound_sms(self, request: WebhookRequest) -> InboundEvent:
        params = self._sms_params(request)
        if "status" in params and "text" not in params:
            raise MalformedPayload(
                "This is a delivery receipt, not an inbound message: point the dashboard's "
                "delivery receipt webhook at /webhooks/vonage/status/."
            )
        message_id = _text(params.get("messageId"))
        sender = _text(params.get("msisdn"))  # inbound: msisdn is the person who wrote
        if not message_id or not sender:
            raise MalformedPayload("messageId or msisdn is missing.")
        text = params.get("text")
        # Vonage's ``keyword`` is the first word ("Stop texting me" -> STOP): the whole text is
        # matched instead. One part of a long message (``concat``, each part with its own
        # messageId) is not the whole message, so it is never a keyword.
        if isinstance(text, str) and _text(params.get("concat")).lower() != "true":
            keyword, consent = keyword_of(text)
        else:
            keyword, consent = "", ""
        return InboundEvent(
            provider=self.name,
            provider_message_id=message_id,
            sender=with_plus(sender),
            our_identity=_text(params.get("to")),  # as DLRs give our sender id
            keyword=keyword,
            consent=consent,
            raw_payload=params if _is_json(request) else form_fields(request.form),
        )

    def missing_credentials(self) -> str | None:
        options = self.options
        if options.signature_secrets or options.subaccounts or options.unsigned_dlrs_allowed:
            return None
        return (
            "has no SIGNATURE_SECRETS; every Vonage callback would be rejected (set "
            "UNSIGNED_DLRS_ALLOWED: True only for SMS API receipts Vonage does not sign)"
        )

    def configuration_warnings(self) -> list[str]:
        warnings = []
        if self.options.unsigned_dlrs_allowed:
            warnings.append(
                "accepts SMS API delivery receipts without a signature (UNSIGNED_DLRS_ALLOWED): "
                "anyone who knows the URL can forge a delivery report"
            )
        if self.options.unsigned_inbound_allowed:
            warnings.append(
                "accepts SMS API inbound messages without a signature "
                "(UNSIGNED_INBOUND_ALLOWED): anyone who knows the URL can opt numbers out or in"
            )
        return warnings

    def configuration_errors(self) -> list[str]:
        problems = []
        method = self.options.signature_method
        if method and str(method).strip().lower() not in HMAC_METHODS:
            problems.append(_method_problem(method))
        try:
            self._max_age()
        except ConfigurationError as exc:
            problems.append(str(exc))
        return problems


_MAX_AGE_PROBLEM = (
    "has SIGNATURE_MAX_AGE {value!r}; it must be a whole number of seconds, or None to turn the "
    "freshness check off"
)


def _method_problem(method: Any) -> str:
    if str(method).strip().lower() in ("md5hash", "md5 hash"):
        return (
            f'has SIGNATURE_METHOD {method!r} (the dashboard\'s "MD5 hash"), which the vonage '
            "SDK cannot verify: it implements only the HMAC methods; choose SHA-256 HMAC in the "
            "dashboard and set SIGNATURE_METHOD 'sha256'"
        )
    return f"has SIGNATURE_METHOD {method!r}, not one of {', '.join(HMAC_METHODS)} (HMAC)"


def _is_inbound_endpoint(request: WebhookRequest) -> bool:
    """Whether Vonage called ``…/<provider>/inbound/`` (the URL router chose the parser too)."""
    return urlsplit(request.path).path.rstrip("/").endswith("/inbound")
