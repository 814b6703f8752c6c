"""The audit trail of the console: every reveal of personal data and every reprocessing of
stored requests, append-only."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from delivery.models import DeliveryRollup


class RevealLog(models.Model):
    """Who saw which personal data (or reprocessed which request), when and why. Never edited
    or deleted through the admin."""

    class Kind(models.TextChoices):
        RECIPIENT = "recipient", _("Phone number")
        RAW_PAYLOAD = "raw_payload", _("Raw payloads (numbers masked)")
        RAW_PAYLOAD_UNMASKED = "raw_payload_unmasked", _("Raw payloads (numbers shown)")
        REPLAY = "replay", _("Reprocessed a stored request")
        SUPPRESS = "suppress", _("Added a number to the suppression list")
        LIFT = "lift", _("Lifted a suppression")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("user"),
    )
    username = models.CharField(
        _("username"), max_length=150, help_text=_("Kept if the user is deleted later.")
    )
    message = models.ForeignKey(
        "sms_delivery.Message",
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("message"),
    )
    message_public_id = models.CharField(
        _("message public id"),
        max_length=24,
        blank=True,
        help_text=_("Kept if the message is purged later."),
    )
    raw_webhook = models.ForeignKey(
        "sms_delivery.RawWebhook",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("raw webhook"),
        help_text=_("Set when an unparsed request of the review queue was viewed."),
    )
    kind = models.CharField(_("what was done"), max_length=24, choices=Kind.choices)
    reason = models.TextField(_("reason"))
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("audit record")
        verbose_name_plural = _("audit records")
        ordering = ["-created_at", "-id"]
        get_latest_by = "created_at"
        indexes = [models.Index(fields=["message_public_id", "created_at"], name="sms_reveal_msg")]

    def __str__(self):
        return f"{self.username} → {self.message_public_id} ({self.kind})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Audit records are append-only.")
        super().save(*args, **kwargs)


class DeliveryAnalytics(DeliveryRollup):
    """The "Delivery analytics" page's entry in the admin (a proxy: no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = _("delivery analytics")
        verbose_name_plural = _("delivery analytics")
        default_permissions = ("view",)
