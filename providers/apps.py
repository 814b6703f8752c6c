"""App config for the provider adapters (no models; an app so its tests and docs sit together)."""

from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    label = "sms_delivery_providers"
    verbose_name = "SMS delivery providers"
