"""App config for the provider adapters (no models; an app so its tests and docs sit together)."""

from contextlib import suppress

from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    label = "sms_delivery_providers"
    verbose_name = "SMS delivery providers"

    def ready(self):
        # Import the enabled adapters (and their SDKs) now rather than on the first webhook: some
        # SDKs take seconds to import and providers such as Telnyx expect an answer within 2 s.
        # A missing SDK is reported by the system checks (E006), not here.
        from delivery.conf import app_settings
        from delivery.exceptions import ConfigurationError

        from .registry import PROVIDERS, provider_class

        for name in app_settings.PROVIDERS:
            if name in PROVIDERS:
                with suppress(ConfigurationError):
                    provider_class(name)
