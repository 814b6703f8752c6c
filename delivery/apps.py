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
        from .conf import app_settings
        from .masking import get_logger
        from .registry import preload_enabled

        preload_enabled()
        if app_settings.PROCESSING == "deferred":
            # The task framework now, not on each worker's first webhook.
            try:
                from . import deferred  # noqa: F401
            except Exception:  # noqa: BLE001 - never a reason not to start: the webhook answers 503
                get_logger("delivery.deferred").warning(
                    "deferred processing: no task framework to load", exc_info=True
                )
