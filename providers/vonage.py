"""Vonage delivery reports: SMS API delivery receipts and Messages API status webhooks.

Both products post to ``/webhooks/vonage/status/``. Which one sent a request is told by its
content: an ``Authorization: Bearer`` token or a JSON object with ``message_uuid`` is a Messages
API status webhook; anything else is an SMS API delivery receipt (DLR). Sources (see
../shared/providers.md §2 and docs/providers/vonage.md):

- SMS API DLRs (GET query, POST form or POST JSON, chosen in the dashboard): fields in
  https://developer.vonage.com/en/messaging/sms/guides/delivery-receipts; the optional ``sig``
  is checked with vonage-http-client's ``Auth.check_signature`` as
  https://developer.vonage.com/en/getting-started/concepts/signing-messages describes.
- Messages API status webhooks (POST JSON): fields in
  https://developer.vonage.com/en/messages/concepts/messages-status-callbacks; the bearer JWT
  (HS256, signature secret) is checked with ``vonage_jwt.verify_signature``, then its
  ``payload_hash`` claim against the SHA-256 of the raw body, which the SDK leaves to us
  (https://developer.vonage.com/en/messages/concepts/signed-webhooks).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import jwt
from vonage_http_client.auth import Auth
from vonage_jwt import VonageVerifyJwtError, verify_signature

from delivery.events import NormalizedEvent
from delivery.exceptions import ConfigurationError, MalformedPayload, SignatureInvalid
from delivery.lifecycle import Status

from .base import BaseProvider, WebhookRequest
from .vonage_errors import VONAGE_ERRORS

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

#: Channels whose ``to`` is a phone number in E.164 without "+" (Messenger's is a page id).
_PHONE_CHANNELS = frozenset({"", "sms", "mms", "whatsapp", "viber", "rcs"})
#: Channels whose sender is shown as sent; others get a prefix: ``whatsapp:447700900001``.
_PLAIN_SENDER_CHANNELS = frozenset({"", "sms", "mms"})


class UnsignedCallback(SignatureInvalid):
    """A Messages API callback without a token: answer 503 so that Vonage sends it again, signed.

    Vonage: "In the rare case of an internal error, it is possible that the callback service will
    send an unsigned callback. By returning an HTTP 5xx response, a retry will be triggered"
    (signed-webhooks page). A 403 would lose that status for good: Vonage does not retry 4xx.
    Nothing is written, as for any failed check.
    """

    status_code = 503
    default_detail = "Unsigned Vonage callback; please retry."


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
    _, hash_sign, fragment = _text(error.get("type")).rpartition("#")
    if hash_sign and fragment:
        return fragment
    title = _text(error.get("title"))
    return title if title.isdigit() else ""


class VonageProvider(BaseProvider):
    """Vonage SMS API delivery receipts and Messages API status webhooks.

    Options (``SMS_DELIVERY["PROVIDERS"]["vonage"]``): ``SIGNATURE_SECRETS`` (the dashboard's
    signature secret; several during a rotation); ``SIGNATURE_METHOD`` (``md5``, ``sha1``,
    ``sha256`` or ``sha512``: the HMAC chosen in the dashboard for SMS API signatures; unset, it
    is read off the length of ``sig``); ``SUBACCOUNTS`` (``{"api key": [secrets]}``, chosen by the
    request's API key); ``UNSIGNED_DLRS_ALLOWED`` (accept SMS API DLRs without ``sig``);
    ``SIGNATURE_MAX_AGE`` (seconds; ``None`` turns the freshness check off).
    """

    name = "vonage"
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

    def account(self, request: WebhookRequest) -> str:
        try:
            if self._is_messages(request):
                return _text(_unverified_claims(_bearer_token(request)).get("api_key"))
            return _text(self._dlr_params(request).get("api-key"))
        except (MalformedPayload, AttributeError, TypeError, ValueError):
            return ""

    # -- authenticity ---------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> bool:
        if self._is_messages(request):
            self._verify_token(request)
            return True
        return self._verify_sig(request)

    def _verify_sig(self, request: WebhookRequest) -> bool:
        """True when the signature matched; False for an unsigned receipt explicitly allowed."""
        try:
            params = self._dlr_params(request)
        except MalformedPayload:
            params = {}
        signature = params.get("sig")
        if not signature:
            if self.options.get("UNSIGNED_DLRS_ALLOWED"):
                return False
            raise SignatureInvalid(
                "Delivery receipt has no signature (sig); ask Vonage support to sign them."
            )
        if not isinstance(signature, str):
            raise SignatureInvalid("Signature (sig) is not a string.")
        if not params.get("timestamp"):
            raise SignatureInvalid("Signed delivery receipt has no timestamp.")
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
        configured = self.options.get("SIGNATURE_METHOD")
        if configured:
            method = str(configured).strip().lower()
            if method not in HMAC_METHODS:
                raise ConfigurationError(_method_problem(configured))
            return method
        method = _METHOD_BY_LENGTH.get(len(signature))
        if not method:
            raise SignatureInvalid("Signature (sig) is not an HMAC digest of a known length.")
        return method

    def _verify_token(self, request: WebhookRequest) -> None:
        token = _bearer_token(request)
        if not token:
            raise UnsignedCallback(
                "Messages API callback without an Authorization bearer token (signature); "
                "answering 503 so that Vonage retries it."
            )
        secrets = self._secrets_for(_text(_unverified_claims(token).get("api_key")))
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
        self._check_age(claims.get("iat"), "iat")

    def _secrets_for(self, api_key: str) -> list[str]:
        """The secrets of ``api_key`` when SUBACCOUNTS lists it, else SIGNATURE_SECRETS."""
        subaccounts = self.options.get("SUBACCOUNTS") or {}
        if api_key and api_key in subaccounts:
            return _secret_list(subaccounts[api_key])
        return self.secrets("SIGNATURE_SECRETS")

    def _max_age(self) -> int | None:
        value = self.options.get("SIGNATURE_MAX_AGE", DEFAULT_MAX_AGE)
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
        except (TypeError, ValueError):
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
        if _bearer_token(request) is not None:
            return True
        if not _is_json(request):
            return False
        try:
            data = request.json
        except MalformedPayload:
            return False
        return isinstance(data, dict) and "message_uuid" in data

    def _dlr_params(self, request: WebhookRequest) -> dict[str, Any]:
        """A DLR's fields, one value each (as Vonage signs them); MalformedPayload if unreadable."""
        if _is_json(request):
            data = request.json
            if not isinstance(data, dict):
                raise MalformedPayload("JSON body is not an object.")
            return data
        return request.form.dict()  # the query string for GET, the form body for POST

    def parse(self, request: WebhookRequest) -> list[NormalizedEvent]:
        request.require_utf8()
        if self._is_messages(request):
            return [self._parse_messages(request)]
        return [self._parse_dlr(request)]

    def _parse_dlr(self, request: WebhookRequest) -> NormalizedEvent:
        params = self._dlr_params(request)
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
            recipient=_e164(_text(params.get("msisdn"))),  # msisdn is the recipient
            sender_identity=_text(params.get("to")),  # and ``to`` is our sender id
            raw_payload=params if _is_json(request) else _as_dict(request),
            # scts (the carrier's time, minute precision) tells two reports apart; it is kept
            # out of the event time (see parse_message_timestamp).
            dedupe_parts=(f"scts={_text(params.get('scts'))}",),
        )

    def _parse_messages(self, request: WebhookRequest) -> NormalizedEvent:
        data = request.json
        if not isinstance(data, dict):
            raise MalformedPayload("JSON body is not an object.")
        message_uuid = _text(data.get("message_uuid"))
        if not message_uuid:
            raise MalformedPayload("message_uuid is missing.")
        raw_status = _text(data.get("status"))
        if not raw_status:
            raise MalformedPayload("status is missing.")
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        error_code = messages_error_code(error)
        title = _text(error.get("title"))
        channel = _text(data.get("channel")).lower()
        recipient, sender = _address(data.get("to")), _address(data.get("from"))
        sms = data.get("sms") if isinstance(data.get("sms"), dict) else {}
        return NormalizedEvent(
            provider=self.name,
            provider_message_id=message_uuid,
            raw_status=raw_status,
            status=self.messages_statuses.get(raw_status.lower(), Status.UNKNOWN),
            provider_occurred_at=parse_messages_timestamp(data.get("timestamp")),
            error_code=error_code,
            error_category=self.errors.category(error_code),
            error_detail=_text(error.get("detail")) or (title if title != error_code else ""),
            recipient=_e164(recipient) if channel in _PHONE_CHANNELS else recipient,
            sender_identity=(
                sender if channel in _PLAIN_SENDER_CHANNELS or not sender else f"{channel}:{sender}"
            ),
            segments=_int_or_none(sms.get("count_total")),
            raw_payload=data,
        )

    def configuration_errors(self) -> list[str]:
        problems = []
        signed = self.secrets("SIGNATURE_SECRETS") or self.options.get("SUBACCOUNTS")
        if not signed and not self.options.get("UNSIGNED_DLRS_ALLOWED"):
            problems.append(
                "has no SIGNATURE_SECRETS; every Vonage callback would be rejected (set "
                "UNSIGNED_DLRS_ALLOWED: True only for SMS API receipts Vonage does not sign)"
            )
        method = self.options.get("SIGNATURE_METHOD")
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


def _matching_secret(token: str, secrets: list[str]) -> str:
    """The secret whose signature ``token`` carries, checked by ``vonage_jwt.verify_signature``."""
    for secret in secrets:
        try:
            if verify_signature(token, secret):
                return secret
        except VonageVerifyJwtError as exc:
            # PyJWT checks the signature before the claims, and checks ``iat`` with no leeway:
            # a token issued a second "in the future" by Vonage's clock has a valid signature.
            # Its time is judged by _check_age, with CLOCK_SKEW. Any other error is final.
            if isinstance(exc.__context__, jwt.ImmatureSignatureError):
                return secret
            raise SignatureInvalid(f"Signed token rejected: {exc}") from exc
    raise SignatureInvalid("Token signature does not match any signature secret.")


def _is_json(request: WebhookRequest) -> bool:
    return request.method == "POST" and request.content_type == "application/json"


def _bearer_token(request: WebhookRequest) -> str | None:
    """The token of ``Authorization: Bearer <token>`` ("" if empty), None without one."""
    scheme, _, token = request.header("Authorization").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _unverified_claims(token: str | None) -> dict:
    """Claims read *without* verification, only to pick the secret (``api_key``)."""
    try:
        claims = jwt.decode(token or "", options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _secret_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    return [item.strip() for item in value or [] if item and item.strip()]


def _text(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value).strip()


def _e164(number: str) -> str:
    """Vonage numbers are E.164 without the "+" (``447700900001``); add it so they parse."""
    return f"+{number}" if number.isdigit() else number


def _address(value: Any) -> str:
    """A Messages API ``to``/``from``: a string, or ``{"type": …, "number"|"id": …}`` (v0.1)."""
    if isinstance(value, dict):
        return _text(value.get("number") or value.get("id"))
    return _text(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _as_dict(request: WebhookRequest) -> dict:
    """Every form / query field as received; repeated fields become lists."""
    return {k: v[0] if len(v) == 1 else v for k, v in request.form.lists()}
