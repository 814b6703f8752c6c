"""App config for the delivery records and webhook ingest."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeliveryConfig(AppConfig):
    name = "delivery"
    label = "sms_delivery"  # unique to us: many projects have a "delivery" app of their own
    verbose_name = _("SMS delivery")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401 - registers the system checks
        from .registry import preload_enabled

        preload_enabled()
