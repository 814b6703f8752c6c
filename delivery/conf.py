"""Settings for django-sms-delivery: one dict, ``settings.SMS_DELIVERY``, read live.

Every property reads ``settings.SMS_DELIVERY`` on access, so ``override_settings`` works and
nothing is read while a module is imported. Misconfiguration is reported by ``delivery.checks``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings

DEFAULT_MAX_BODY_BYTES = 64 * 1024
#: ``SMS_DELIVERY["RETENTION"]``: days each kind of personal data is kept (None: for ever).
RETENTION_KEYS = ("RAW_REQUESTS_DAYS", "EVENT_PAYLOADS_DAYS", "RECIPIENTS_DAYS")


def _derive(label: str) -> str:
    """A key derived from SECRET_KEY: only allowed with DEBUG=True (see checks E002/E003)."""
    return hashlib.sha256(f"django-sms-delivery:{label}:{settings.SECRET_KEY}".encode()).hexdigest()


class AppSettings:
    """django-sms-delivery settings, read from ``settings.SMS_DELIVERY`` on every access."""

    def _get(self, name: str, default: Any = None) -> Any:
        return getattr(settings, "SMS_DELIVERY", {}).get(name, default)

    @property
    def WEBHOOK_BASE_URL(self) -> str | None:
        """Public base URL providers call (scheme + host [+ prefix]); rebuilds signed URLs
        behind proxies. ``None``: use ``request.build_absolute_uri()``."""
        value = self._get("WEBHOOK_BASE_URL")
        return value.rstrip("/") if value else None

    @property
    def HASH_KEY(self) -> str | None:
        """HMAC key for ``Message.recipient_hash``. Derived from SECRET_KEY when DEBUG is on."""
        return self._get("HASH_KEY") or (_derive("hash") if settings.DEBUG else None)

    @property
    def ENCRYPTION_KEYS(self) -> list[str]:
        """Keys for recipient numbers at rest: the first encrypts, all decrypt (rotation)."""
        keys = self._get("ENCRYPTION_KEYS") or []
        if isinstance(keys, str):
            keys = [keys]
        if not keys and settings.DEBUG:
            keys = [_derive("encryption")]
        return list(keys)

    @property
    def PROVIDERS(self) -> dict[str, dict[str, Any]]:
        """Enabled providers and their credentials, keyed by provider name."""
        return self._get("PROVIDERS", {}) or {}

    @property
    def PROCESSING(self) -> str:
        """``"sync"`` (default): a callback is read and applied before the answer.
        ``"deferred"``: stored, answered, then applied by a task (``delivery.deferred``)."""
        return self._get("PROCESSING", "sync")

    @property
    def MAX_BODY_BYTES(self) -> int:
        """Webhook bodies larger than this are refused with 413."""
        return int(self._get("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))

    @property
    def SKIP_SIGNATURE_VERIFICATION(self) -> bool:
        """Development only: accept unsigned callbacks. A check error forbids it with DEBUG off."""
        return bool(self._get("SKIP_SIGNATURE_VERIFICATION", False))

    @property
    def MASK_CALLABLE(self) -> str | None:
        """Dotted path to a ``mask(e164) -> str`` function replacing the default masking."""
        return self._get("MASK_CALLABLE")

    @property
    def DEFAULT_REGION(self) -> str | None:
        """ISO region for numbers typed without a country code in console search, e.g. "US"."""
        return self._get("DEFAULT_REGION")

    @property
    def SUPPRESSION_PER_SENDER(self) -> bool:
        """``False`` (default): an opt-out through any sender stops every send to the person.
        ``True``: only sends from the sender it came through, as most providers block."""
        return bool(self._get("SUPPRESSION_PER_SENDER", False))

    @property
    def ALERTS(self) -> dict[str, Any]:
        """Thresholds of the alert rules over their defaults (``delivery.alerts.DEFAULTS``)."""
        return self._get("ALERTS") or {}

    @property
    def ALERT_NOTIFIERS(self) -> list[str]:
        """Dotted paths of ``notify(alert, resolved)``; default: the log."""
        return list(self._get("ALERT_NOTIFIERS") or [])

    @property
    def ALERT_WEBHOOK_URL(self) -> str | None:
        """Where ``delivery.alerts.webhook_notifier`` posts alerts as JSON."""
        return self._get("ALERT_WEBHOOK_URL")

    @property
    def METRICS_TOKEN(self) -> str | list[str] | None:
        """Bearer token(s) of the Prometheus endpoint (``/webhooks/metrics``): one, a
        comma-separated string or a list, any of them accepted (rotation); unset: no endpoint."""
        return self._get("METRICS_TOKEN")

    @property
    def PRODUCT_ACTION_URL(self) -> str | None:
        """Template for linking a message's ``product_reference``, e.g.
        ``"https://app.example.com/admin/orders/{reference}/"``."""
        return self._get("PRODUCT_ACTION_URL")

    @property
    def RETENTION(self) -> dict[str, Any]:
        """Days to keep raw requests, event payloads and recipient numbers before
        ``sms_delivery_purge`` blanks them; a missing key (or None) keeps them for ever."""
        configured = self._get("RETENTION") or {}
        return {key: configured.get(key) for key in RETENTION_KEYS}


app_settings = AppSettings()
