"""The providers this library knows, as an explicit literal (no import-time discovery).

Adapters are imported on first use, so a provider whose SDK is an optional extra costs nothing
until it is enabled.
"""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import import_string

from delivery.conf import app_settings
from delivery.exceptions import ConfigurationError, ProviderNotConfigured

from .base import BaseProvider
from .errors import ErrorInfo

PROVIDERS: dict[str, str] = {
    "twilio": "providers.twilio.TwilioProvider",
    "vonage": "providers.vonage.VonageProvider",
    "plivo": "providers.plivo.PlivoProvider",
    "telnyx": "providers.telnyx.TelnyxProvider",
}


@cache
def provider_class(name: str) -> type[BaseProvider]:
    """The adapter class registered as ``name`` (imports its module on first use).

    Raises ConfigurationError naming the pip extra when the provider's SDK is not installed.
    """
    try:
        return import_string(PROVIDERS[name])
    except ImportError as exc:
        raise ConfigurationError(
            f"The {name} provider needs its SDK ({exc.name or exc}): "
            f"pip install 'django-sms-delivery[{name}]'"
        ) from exc


def get_provider(name: str) -> BaseProvider:
    """The adapter for ``name`` with its settings; 404 unless known and enabled in settings."""
    if name not in PROVIDERS or name not in app_settings.PROVIDERS:
        raise ProviderNotConfigured()
    return provider_class(name)(app_settings.PROVIDERS[name] or {})


def error_info(provider: str, code: str) -> ErrorInfo | None:
    """What ``code`` means for ``provider``, for support (None when there is no code)."""
    if provider not in PROVIDERS or not code:
        return None
    return provider_class(provider).errors.lookup(code)
