"""App config for the provider adapters: no models; their management commands (the simulator,
the demo seed) and the adapters' own modules."""

from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    label = "sms_delivery_providers"
    verbose_name = "SMS delivery providers"
