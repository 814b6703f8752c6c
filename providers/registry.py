"""The providers this library knows, as an explicit literal (no import-time discovery)."""

from __future__ import annotations

from delivery.conf import app_settings
from delivery.exceptions import ProviderNotConfigured

from .base import BaseProvider
from .errors import ErrorInfo
from .twilio import TwilioProvider

PROVIDERS: dict[str, type[BaseProvider]] = {
    "twilio": TwilioProvider,
}


def get_provider(name: str) -> BaseProvider:
    """The adapter for ``name`` with its settings; 404 unless known and enabled in settings."""
    if name not in PROVIDERS or name not in app_settings.PROVIDERS:
        raise ProviderNotConfigured()
    return PROVIDERS[name](app_settings.PROVIDERS[name])


def error_info(provider: str, code: str) -> ErrorInfo | None:
    """What ``code`` means for ``provider``, for support (None when there is no code)."""
    cls = PROVIDERS.get(provider)
    return cls.errors.lookup(code) if cls and code else None
