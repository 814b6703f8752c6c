"""One exception hierarchy; each error that reaches HTTP carries its status code."""

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException


class SmsDeliveryError(Exception):
    """Base class for errors raised by django-sms-delivery."""

    default_code = "sms_delivery_error"  #: the rejection reason counted for alerting


class SignatureInvalid(SmsDeliveryError, APIException):
    """The request is not provably from the provider: answer 403 and write nothing."""

    status_code: int = status.HTTP_403_FORBIDDEN
    default_detail = _("Webhook signature could not be verified.")
    default_code = "signature_invalid"


class MalformedPayload(SmsDeliveryError, APIException):
    """A verified request we cannot parse: the raw request is kept for review, answer 400."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = _("Webhook payload could not be parsed.")
    default_code = "malformed_payload"


class PayloadTooLarge(SmsDeliveryError, APIException):
    """The body is larger than ``SMS_DELIVERY['MAX_BODY_BYTES']``."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("Webhook body is too large.")
    default_code = "payload_too_large"


class StorageUnavailable(SmsDeliveryError, APIException):
    """The database could not store the callback: answer 503 so the provider retries."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("Storage is unavailable; please retry.")
    default_code = "storage_unavailable"


class Misconfigured(SmsDeliveryError, APIException):
    """The settings cannot handle this request (see ``manage.py check``): 503, nothing written."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = _("The webhook endpoint is misconfigured; please retry later.")
    default_code = "misconfigured"


class ProviderNotConfigured(SmsDeliveryError, APIException):
    """The URL names a provider that is not enabled in ``SMS_DELIVERY['PROVIDERS']``."""

    status_code = status.HTTP_404_NOT_FOUND
    default_detail = _("This provider is not configured.")
    default_code = "provider_not_configured"


class InvalidNumber(SmsDeliveryError, ValueError):
    """A number given to the app (not by a provider) that cannot be read as a phone number. The
    message names no digits: it may end up in a log."""


class ConfigurationError(ImproperlyConfigured):
    """Misconfiguration; deliberately not a SmsDeliveryError so nothing swallows it."""


class PollFailed(SmsDeliveryError):
    """Asking a provider's API about a message did not give an answer (reconciliation)."""

    default_code = "poll_failed"


class MessageNotFound(PollFailed):
    """The provider's API does not know the message (404)."""

    default_code = "poll_not_found"


class RateLimited(PollFailed):
    """The provider's API asked us to slow down (429)."""

    default_code = "poll_rate_limited"

    def __init__(self, message: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after  #: seconds, when the provider says


class Suppressed(SmsDeliveryError):
    """``send_sms`` refused a recipient on the suppression list (opted out); nothing was sent
    or recorded. The message names no digits."""

    default_code = "suppressed"


class SendRefused(SmsDeliveryError):
    """The provider's API answered a send request with an error: nothing was sent."""

    default_code = "send_refused"

    def __init__(self, message: str, *, code: str = "", http_status: int | None = None):
        super().__init__(message)
        self.code = code  #: the provider's error code, "" if it gave none
        self.http_status = http_status


class SendUnanswered(SmsDeliveryError):
    """The provider's API did not answer a send request (timeout, connection lost): the
    message may or may not have been sent."""

    default_code = "send_unanswered"
