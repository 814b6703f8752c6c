"""The providers this library knows, as an explicit literal of dotted paths.

The core names its adapters here and imports one only when it is used (never at import time):
the arrows run ``support_console -> delivery <- providers``, and a provider whose SDK is an
optional extra costs nothing until it is enabled.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from django.utils.module_loading import import_string

from .adapters import BaseProvider
from .conf import app_settings
from .error_codes import ErrorCatalogue, ErrorInfo
from .exceptions import ConfigurationError, ProviderNotConfigured

PROVIDERS: dict[str, str] = {
    "twilio": "providers.twilio.TwilioProvider",
    "vonage": "providers.vonage.VonageProvider",
    "plivo": "providers.plivo.PlivoProvider",
    "telnyx": "providers.telnyx.TelnyxProvider",
}
#: Each provider's error catalogue, importable without its SDK: the console explains the codes
#: of stored messages even where the provider's extra is not installed.
ERROR_CATALOGUES: dict[str, str] = {
    "twilio": "providers.twilio_errors.TWILIO_ERRORS",
    "vonage": "providers.vonage_errors.VONAGE_ERRORS",
    "plivo": "providers.plivo_errors.PLIVO_ERRORS",
    "telnyx": "providers.telnyx_errors.TELNYX_ERRORS",
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


#: name -> (the settings it was built from, the adapter): reading and checking the options
#: again for every request cost a third of a millisecond.
_built: dict[str, tuple[Any, BaseProvider]] = {}


def get_provider(name: str) -> BaseProvider:
    """The adapter for ``name`` with its settings; 404 unless known and enabled in settings.

    Built once and reused while its settings stay equal (they are compared on every call, so
    ``override_settings`` and edited settings take effect at once).
    """
    if name not in PROVIDERS or name not in app_settings.PROVIDERS:
        raise ProviderNotConfigured()
    options = app_settings.PROVIDERS[name] or {}
    built = _built.get(name)
    if built is not None and built[0] == options:
        return built[1]
    provider = provider_class(name)(options)
    _built[name] = (copy.deepcopy(options), provider)
    return provider


@cache
def error_catalogue(provider: str) -> ErrorCatalogue | None:
    """``provider``'s error catalogue (its SDK is not needed), None for an unknown provider."""
    path = ERROR_CATALOGUES.get(provider)
    return import_string(path) if path else None


def error_info(provider: str, code: str) -> ErrorInfo | None:
    """What ``code`` means for ``provider``, for support (None when there is no code)."""
    catalogue = error_catalogue(provider) if code else None
    return catalogue.lookup(code) if catalogue else None


def preload_enabled() -> None:
    """Import the enabled adapters (and their SDKs) now rather than on the first webhook: some
    SDKs take seconds to import and providers such as Telnyx expect an answer within 2 s. A
    missing SDK is reported by the system checks (E006), not here."""
    for name in app_settings.PROVIDERS:
        if name in PROVIDERS:
            try:
                provider_class(name)
            except ConfigurationError:
                continue
