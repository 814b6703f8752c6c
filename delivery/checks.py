"""System checks: every misconfiguration explained, with a stable id and a hint.

Ids are never reused; retired ones stay listed in ``Codes`` as reserved.
"""

import difflib
from importlib.util import find_spec

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import connections, router

from .conf import RETENTION_KEYS, app_settings
from .exceptions import ConfigurationError


class Codes:
    PROVIDER_SECRETS = "sms_delivery.E001"
    NO_HASH_KEY = "sms_delivery.E002"
    NO_ENCRYPTION_KEYS = "sms_delivery.E003"
    SKIP_VERIFICATION_IN_PRODUCTION = "sms_delivery.E004"
    UNKNOWN_PROVIDER = "sms_delivery.E005"
    PROVIDER_SDK_MISSING = "sms_delivery.E006"
    UNKNOWN_PROVIDER_OPTION = "sms_delivery.E007"
    INVALID_PROVIDER_OPTION = "sms_delivery.E008"
    INVALID_RETENTION = "sms_delivery.E009"
    INVALID_PROCESSING = "sms_delivery.E010"
    METRICS_CLIENT_MISSING = "sms_delivery.E011"
    BASE_URL_NOT_HTTPS = "sms_delivery.W001"
    NOT_POSTGRESQL = "sms_delivery.W002"
    WEAKENED_VERIFICATION = "sms_delivery.W003"
    COUNTERS_NOT_SHARED = "sms_delivery.W004"


@register(Tags.security)
def check_keys(app_configs=None, **kwargs):
    errors: list[CheckMessage] = []
    if not app_settings.HASH_KEY:
        errors.append(
            Error(
                "SMS_DELIVERY['HASH_KEY'] is not set; recipient numbers cannot be hashed for search.",
                hint="Set it to a long random string and keep it stable: changing it makes old "
                "messages unsearchable by number. With DEBUG=True it is derived from SECRET_KEY.",
                id=Codes.NO_HASH_KEY,
            )
        )
    if not app_settings.ENCRYPTION_KEYS:
        errors.append(
            Error(
                "SMS_DELIVERY['ENCRYPTION_KEYS'] is empty; recipient numbers cannot be stored "
                "encrypted.",
                hint="Set a list of long random strings: the first encrypts, all decrypt. Add a new "
                "key in front to rotate; remove an old one only after re-encrypting.",
                id=Codes.NO_ENCRYPTION_KEYS,
            )
        )
    if app_settings.SKIP_SIGNATURE_VERIFICATION and not settings.DEBUG:
        errors.append(
            Error(
                "SMS_DELIVERY['SKIP_SIGNATURE_VERIFICATION'] is on with DEBUG=False: anyone could "
                "forge delivery reports.",
                hint="Remove the setting. It exists for local development only.",
                id=Codes.SKIP_VERIFICATION_IN_PRODUCTION,
            )
        )
    base = app_settings.WEBHOOK_BASE_URL
    if base and not base.startswith("https://") and not settings.DEBUG:
        errors.append(
            Warning(
                f"SMS_DELIVERY['WEBHOOK_BASE_URL'] is {base!r}, not https: providers would send "
                "personal data in clear.",
                hint="Serve webhooks over HTTPS and set the https:// URL providers call.",
                id=Codes.BASE_URL_NOT_HTTPS,
            )
        )
    return errors


@register(Tags.compatibility)
def check_database(app_configs=None, **kwargs):
    from .models import Message

    vendor = connections[router.db_for_write(Message)].vendor
    if vendor == "postgresql" or settings.DEBUG:
        return []
    return [
        Warning(
            f"django-sms-delivery is running on {vendor}; concurrent webhooks are only proven "
            "correct on PostgreSQL (row locks, ON CONFLICT).",
            hint="Use PostgreSQL in production.",
            id=Codes.NOT_POSTGRESQL,
        )
    ]


@register(Tags.security)
def check_providers(app_configs=None, **kwargs):
    from delivery.registry import PROVIDERS, provider_class

    errors: list[CheckMessage] = []
    for name, options in app_settings.PROVIDERS.items():
        if name not in PROVIDERS:
            errors.append(
                Error(
                    f"SMS_DELIVERY['PROVIDERS'] names {name!r}, which is not a known provider.",
                    hint=f"Known providers: {', '.join(sorted(PROVIDERS))}.",
                    id=Codes.UNKNOWN_PROVIDER,
                )
            )
            continue
        try:
            adapter_class = provider_class(name)
        except ConfigurationError as exc:
            errors.append(
                Error(
                    str(exc),
                    hint="Install the extra, or remove the provider from SMS_DELIVERY['PROVIDERS'].",
                    id=Codes.PROVIDER_SDK_MISSING,
                )
            )
            continue
        known = adapter_class.Options.setting_names()
        for key in adapter_class.Options.unknown_keys(options or {}):
            close = difflib.get_close_matches(str(key), known, n=1)
            errors.append(
                Error(
                    f"SMS_DELIVERY['PROVIDERS'][{name!r}] has an unknown option {key!r}; it is "
                    "ignored.",
                    hint=f"Did you mean {close[0]!r}?"
                    if close
                    else f"The {name} options are {', '.join(sorted(known))}.",
                    id=Codes.UNKNOWN_PROVIDER_OPTION,
                )
            )
        docs = f"See docs/providers/{name}.md (README for twilio), section Settings."
        try:
            adapter = adapter_class(options or {})
        except ConfigurationError as exc:
            errors.append(Error(str(exc), hint=docs, id=Codes.INVALID_PROVIDER_OPTION))
            continue
        missing = adapter.missing_credentials()
        if missing:
            errors.append(
                Error(
                    f"SMS_DELIVERY['PROVIDERS'][{name!r}] {missing}.",
                    hint=f"Set the {name} credentials (see the README section for {name}).",
                    id=Codes.PROVIDER_SECRETS,
                )
            )
        for problem in [*adapter.configuration_errors(), *adapter.options.poll_problems()]:
            errors.append(
                Error(
                    f"SMS_DELIVERY['PROVIDERS'][{name!r}] {problem}.",
                    hint=docs,
                    id=Codes.INVALID_PROVIDER_OPTION,
                )
            )
        for problem in adapter.configuration_warnings():
            errors.append(
                Warning(
                    f"SMS_DELIVERY['PROVIDERS'][{name!r}] {problem}.",
                    hint=f"See docs/providers/{name}.md, section Signatures.",
                    id=Codes.WEAKENED_VERIFICATION,
                )
            )
    return errors


@register(Tags.compatibility)
def check_retention(app_configs=None, **kwargs):
    """``SMS_DELIVERY["RETENTION"]``: known keys, each a whole number of days or None."""
    configured = getattr(settings, "SMS_DELIVERY", {}).get("RETENTION") or {}
    if not isinstance(configured, dict):
        return [
            Error(
                "SMS_DELIVERY['RETENTION'] is not a dict.",
                hint=f"For example {{'RAW_REQUESTS_DAYS': 90}}; keys: {', '.join(RETENTION_KEYS)}.",
                id=Codes.INVALID_RETENTION,
            )
        ]
    errors: list[CheckMessage] = []
    for key, value in configured.items():
        if key not in RETENTION_KEYS:
            errors.append(
                Error(
                    f"SMS_DELIVERY['RETENTION'] has an unknown key {key!r}.",
                    hint=f"Known keys: {', '.join(RETENTION_KEYS)}.",
                    id=Codes.INVALID_RETENTION,
                )
            )
        elif value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            errors.append(
                Error(
                    f"SMS_DELIVERY['RETENTION'][{key!r}] is {value!r}, not a number of days.",
                    hint="A whole number of days, at least 1; or None to keep the data.",
                    id=Codes.INVALID_RETENTION,
                )
            )
    return errors


@register(Tags.compatibility)
def check_processing(app_configs=None, **kwargs):
    """``SMS_DELIVERY["PROCESSING"]``: "sync", or "deferred" with a task framework to run it."""
    mode = app_settings.PROCESSING
    if mode not in ("sync", "deferred"):
        return [
            Error(
                f"SMS_DELIVERY['PROCESSING'] is {mode!r}.",
                hint="'sync' (the default) or 'deferred'.",
                id=Codes.INVALID_PROCESSING,
            )
        ]
    if mode == "deferred" and not task_framework_available():
        return [
            Error(
                "SMS_DELIVERY['PROCESSING'] is 'deferred' but no task framework is installed.",
                hint="Django >= 6.0 has one (django.tasks); on Django 5.2 install the backport: "
                "pip install 'django-sms-delivery[deferred]' and add 'django_tasks' to "
                "INSTALLED_APPS. Then configure TASKS with a backend that runs tasks in workers.",
                id=Codes.INVALID_PROCESSING,
            )
        ]
    return []


@register(Tags.compatibility)
def check_monitoring(app_configs=None, **kwargs):
    """The Prometheus endpoint needs its client; the counters the alert rules and the endpoint
    read must live in a cache every process shares."""
    from django.core.cache import caches

    problems: list[CheckMessage] = []
    if app_settings.METRICS_TOKEN and not find_spec("prometheus_client"):
        problems.append(
            Error(
                "SMS_DELIVERY['METRICS_TOKEN'] is set but prometheus-client is not installed.",
                hint="pip install 'django-sms-delivery[metrics]'",
                id=Codes.METRICS_CLIENT_MISSING,
            )
        )
    backend = type(caches["default"]).__name__
    if (app_settings.METRICS_TOKEN or app_settings.ALERT_NOTIFIERS or app_settings.ALERTS) and (
        backend in ("LocMemCache", "DummyCache")
    ):
        problems.append(
            Warning(
                f"The default cache is {backend}: each process counts webhook refusals and "
                "duplicates on its own, so the alert rules and /webhooks/metrics see only "
                "their own process's counts.",
                hint="Use a shared cache (Redis, Memcached or the database cache) for CACHES['default'].",
                id=Codes.COUNTERS_NOT_SHARED,
            )
        )
    return problems


def task_framework_available() -> bool:
    return any(find_spec(name) for name in ("django.tasks", "django_tasks"))
