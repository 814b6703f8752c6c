"""App config for the support console."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class SupportConsoleConfig(AppConfig):
    name = "support_console"
    label = "sms_delivery_console"
    verbose_name = _("Support console")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .groups import ensure_groups

        # After every migrate (of any app) so the permissions it needs already exist.
        post_migrate.connect(ensure_groups, dispatch_uid="sms_delivery_support_groups")
