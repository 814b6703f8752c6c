"""App config for the support console."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SupportConsoleConfig(AppConfig):
    name = "support_console"
    verbose_name = _("Support console")
    default_auto_field = "django.db.models.BigAutoField"
