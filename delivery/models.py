"""Delivery records: the message summary, its append-only event timeline, the raw evidence."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from . import crypto, recipients
from .events import ConsentChange, EventSource
from .lifecycle import FINAL_STATUSES, PENDING_STATUSES, ErrorCategory, Status, precedence_key
from .masking import mask_text

#: The console's two abilities beyond viewing, as ``user.has_perm()`` names them.
REVEAL_RECIPIENT = "sms_delivery.reveal_recipient"
VIEW_RAW_PAYLOAD = "sms_delivery.view_raw_payload"
#: Read stored raw requests again with the current adapters (``delivery.replay``).
REPLAY_RAW_REQUESTS = "sms_delivery.replay_rawwebhook"


def new_public_id() -> str:
    """A stable, unguessable public id such as ``msg_3kq9x7d2m4h8p1r6t5v0``."""
    # 100 random bits, five per character, from one read of the system's random source.
    bits = int.from_bytes(secrets.token_bytes(13)) >> 4
    return "msg_" + "".join(_PUBLIC_ID_ALPHABET[(bits >> (5 * i)) & 31] for i in range(20))


_PUBLIC_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


@dataclass(frozen=True, slots=True)
class SealedRequest:
    """What :meth:`RawWebhook.seal` encrypted: the request exactly as received."""

    path: str  #: path and query string
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        """The body as text; bytes that are not UTF-8 shown as backslash escapes."""
        return self.body.decode("utf-8", errors="backslashreplace")


class RawWebhook(models.Model):
    """One HTTP request a provider made to us, kept verbatim as evidence (personal data).

    The exact path, headers and body are encrypted (``request_encrypted``); what stays readable
    (``path`` with numbers masked, method, content type, account, parse error) names no one.
    """

    provider = models.CharField(_("provider"), max_length=32)
    account = models.CharField(
        _("provider account"),
        max_length=64,
        blank=True,
        help_text=_("Account / subaccount the provider says sent the callback."),
    )
    method = models.CharField(_("method"), max_length=8)
    path = models.TextField(
        _("path"), help_text=_("Path and query string as received, phone numbers masked.")
    )
    content_type = models.CharField(_("content type"), max_length=128, blank=True)
    request_encrypted = models.TextField(
        _("request (encrypted)"),
        blank=True,
        help_text=_(
            "Path, headers and body exactly as received, encrypted with "
            "SMS_DELIVERY['ENCRYPTION_KEYS']; read only through the audited views."
        ),
    )
    signature_valid = models.BooleanField(
        _("signature valid"),
        null=True,
        help_text=_("Empty when verification was skipped (development only)."),
    )
    parse_error = models.TextField(
        _("parse error"),
        blank=True,
        help_text=_("Why a verified request could not be parsed; such requests need review."),
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    recipient_hash = models.CharField(
        _("person (hash)"),
        max_length=64,
        blank=True,
        help_text=_(
            "Keyed hash of the number the request is about (recipient or sender), set when it "
            "was read, so an erasure finds the request without decrypting every one."
        ),
    )
    pending = models.BooleanField(
        _("waiting to be read"),
        default=False,
        # A default in the table too: code of the previous release, still serving while the
        # migration runs, inserts rows without this column.
        db_default=False,
        help_text=_(
            "Stored and answered, not yet read: deferred processing (SMS_DELIVERY['PROCESSING'] "
            "= 'deferred') reads it in a task."
        ),
    )

    class Meta:
        verbose_name = _("raw webhook")
        verbose_name_plural = _("raw webhooks")
        ordering = ["-received_at", "-id"]
        get_latest_by = "received_at"
        indexes = [
            models.Index(fields=["received_at"], name="sms_raw_received"),
            models.Index(fields=["provider", "received_at"], name="sms_raw_provider"),
            models.Index(
                fields=["recipient_hash"],
                name="sms_raw_person",
                condition=~models.Q(recipient_hash=""),
            ),
            models.Index(
                fields=["received_at"],
                name="sms_raw_parse_failed",
                condition=~models.Q(parse_error=""),
            ),
            models.Index(
                fields=["received_at"], name="sms_raw_pending", condition=models.Q(pending=True)
            ),
        ]
        permissions = [
            ("replay_rawwebhook", _("Can reprocess stored raw requests with the current code")),
        ]

    def __str__(self):
        return f"{self.provider} {self.method} {self.received_at:%Y-%m-%d %H:%M:%S}"

    @staticmethod
    def seal(path: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        """The columns that keep a request: encrypted as received (read back by
        :attr:`sealed`), and its path with numbers masked for display."""
        meta = json.dumps({"path": path, "headers": headers}, ensure_ascii=True)
        return {
            "path": mask_text(path),
            "request_encrypted": crypto.encrypt_bytes(meta.encode() + b"\n" + body),
        }

    @cached_property
    def sealed(self) -> SealedRequest | None:
        """The request as received; None when no configured key opens it (rotated out).

        Personal data: show it only after an audited reveal.
        """
        data = crypto.decrypt_bytes(self.request_encrypted) if self.request_encrypted else None
        if data is None:
            return None
        meta, _, body = data.partition(b"\n")  # ASCII JSON never holds a raw newline
        fields = json.loads(meta)
        return SealedRequest(fields["path"], fields["headers"], body)


class MessageQuerySet(models.QuerySet):
    def for_recipient(self, number: str, default_region: str | None = None):
        """Messages to ``number`` (any common format), matched through the keyed hash."""
        e164 = recipients.to_e164(number, default_region)
        return self.filter(recipient_hash=recipients.recipient_hash(e164)) if e164 else self.none()

    def final(self):
        return self.filter(current_status__in=FINAL_STATUSES)

    def pending(self):
        return self.filter(current_status__in=PENDING_STATUSES)


class Message(models.Model):
    """The current summary of one outbound message; decided by its events (see lifecycle)."""

    public_id = models.CharField(
        _("public id"), max_length=24, unique=True, default=new_public_id, editable=False
    )
    provider = models.CharField(_("provider"), max_length=32)
    provider_message_id = models.CharField(_("provider message id"), max_length=64)
    recipient_hash = models.CharField(
        _("recipient hash"),
        max_length=64,
        blank=True,
        help_text=_("Keyed HMAC-SHA256 of the E.164 number; searchable, not reversible."),
    )
    recipient_encrypted = models.TextField(
        _("recipient (encrypted)"),
        blank=True,
        help_text=_("The E.164 number, encrypted with SMS_DELIVERY['ENCRYPTION_KEYS']."),
    )
    destination_country = models.CharField(
        _("destination country"), max_length=2, blank=True, help_text=_("ISO 3166-1 alpha-2.")
    )
    recipient_time_zone = models.CharField(
        _("recipient time zone"),
        max_length=64,
        blank=True,
        help_text=_("IANA zone; overrides the zone guessed from the number."),
    )
    sender_identity = models.CharField(
        _("sender identity"),
        max_length=100,
        blank=True,
        help_text=_("Number, short code, alphanumeric id, messaging service or channel address."),
    )
    template_key = models.CharField(_("template"), max_length=100, blank=True)
    product_reference = models.CharField(
        _("product action"),
        max_length=200,
        blank=True,
        help_text=_("Free reference to what triggered the message, e.g. 'login:8812'."),
    )
    segments = models.PositiveSmallIntegerField(_("segments"), null=True, blank=True)
    current_status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACCEPTED
    )
    status_occurred_at = models.DateTimeField(
        _("status time (provider)"),
        null=True,
        blank=True,
        help_text=_("Provider time of the event that decided the status, when it sent one."),
    )
    status_event_key = models.CharField(
        _("deciding event"),
        max_length=255,
        blank=True,
        help_text=_("Dedupe key of the event that decided the status."),
    )
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    error_category = models.CharField(
        _("error category"), max_length=32, blank=True, choices=ErrorCategory.choices
    )
    first_sent_at = models.DateTimeField(_("first sent"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    last_event_at = models.DateTimeField(_("last event received"), null=True, blank=True)
    needs_review = models.BooleanField(
        _("needs review"),
        default=False,
        help_text=_("An event carried a status this library could not map."),
    )
    registered_at = models.DateTimeField(
        _("requested"),
        null=True,
        blank=True,
        help_text=_(
            "When the app recorded the send (register_outbound); empty for a message known only "
            "from the provider's reports."
        ),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    last_polled_at = models.DateTimeField(
        _("last asked the provider"),
        null=True,
        blank=True,
        help_text=_("When reconciliation last asked the provider's API about this message."),
    )
    consent_at = models.DateTimeField(
        _("consent given"),
        null=True,
        blank=True,
        help_text=_("When the recipient agreed to receive it, as the app said (send_sms)."),
    )
    consent_source = models.CharField(
        _("consent source"),
        max_length=200,
        blank=True,
        db_default="",
        default="",
        help_text=_("Where the consent was given, e.g. 'checkout form'."),
    )
    retry_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="retries",
        db_index=False,  # a partial index (Meta)
        verbose_name=_("retry of"),
        help_text=_("The message this one resends."),
    )
    idempotency_key = models.CharField(
        _("idempotency key"),
        max_length=100,
        null=True,
        blank=True,
        help_text=_("The app's key for this send: a retried send_sms call does not send twice."),
    )

    objects = MessageQuerySet.as_manager()

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-created_at", "-id"]
        get_latest_by = "created_at"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id"], name="sms_delivery_message_provider_id"
            ),
            # Partial: only messages sent with a key pay for it.
            models.UniqueConstraint(
                fields=["idempotency_key"],
                name="sms_msg_idempotency_key",
                condition=models.Q(idempotency_key__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="sms_msg_created"),
            # The retry chain on a message page; only resends pay for it.
            models.Index(
                fields=["retry_of"],
                name="sms_msg_retry_of",
                condition=models.Q(retry_of__isnull=False),
            ),
            models.Index(fields=["current_status", "created_at"], name="sms_msg_status"),
            models.Index(fields=["destination_country", "created_at"], name="sms_msg_country"),
            models.Index(fields=["provider", "created_at"], name="sms_msg_provider"),
            models.Index(fields=["provider_message_id"], name="sms_msg_provider_msg_id"),
            models.Index(fields=["recipient_hash"], name="sms_msg_recipient"),
            models.Index(fields=["error_category", "created_at"], name="sms_msg_error_cat"),
            # Sender and template filters, and their choices (an index skip scan).
            models.Index(fields=["sender_identity", "created_at"], name="sms_msg_sender"),
            models.Index(fields=["template_key", "created_at"], name="sms_msg_template"),
            # "Did we retry?": the other messages for the same product action.
            models.Index(
                fields=["product_reference", "created_at"],
                name="sms_msg_product",
                condition=~models.Q(product_reference=""),
            ),
            models.Index(
                fields=["created_at"],
                name="sms_msg_needs_review",
                condition=models.Q(needs_review=True),
            ),
        ]
        permissions = [
            ("reveal_recipient", _("Can reveal a message's full phone number")),
            ("view_raw_payload", _("Can view raw provider payloads")),
        ]

    def __str__(self):
        return self.public_id

    @property
    def is_final(self) -> bool:
        return self.current_status in FINAL_STATUSES

    @property
    def recipient(self) -> str:
        """The decrypted E.164 number. Callers showing it to a person must audit the reveal."""
        return crypto.decrypt(self.recipient_encrypted)

    def set_recipient(self, number: str) -> None:
        """Store ``number`` hashed and encrypted, and fill country / zone if unset."""
        protected = recipients.protect(number)
        if not protected:
            return
        self.recipient_hash, self.recipient_encrypted = protected.hash, protected.encrypted
        if not self.destination_country:
            self.destination_country = protected.country

    @property
    def time_zones(self) -> tuple[str, ...]:
        """The recipient's zone override, else the zones the number's digits allow."""
        if self.recipient_time_zone:
            return (self.recipient_time_zone,)
        number = self.recipient
        return recipients.locate(number).time_zones if number else ()

    def summary_key(self):
        """Precedence key of the event that decided the current status (None: no event yet)."""
        if not self.status_event_key:
            return None
        return precedence_key(
            self.current_status, self.status_occurred_at, self.error_code, self.status_event_key
        )


class MessageEventQuerySet(models.QuerySet):
    def timeline(self, message: Message):
        """Every event of ``message`` in the order we received it."""
        return self.filter(message=message).order_by("received_at", "id")


class MessageEvent(models.Model):
    """One normalized provider report about a message. Append-only; never edited."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="events", verbose_name=_("message")
    )
    raw_webhook = models.ForeignKey(
        RawWebhook,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("raw webhook"),
    )
    provider_event_id = models.CharField(_("provider event id"), max_length=128, blank=True)
    dedupe_key = models.CharField(
        _("dedupe key"),
        max_length=255,
        help_text=_("Provider event id, or provider + message id + status + time + error code."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    raw_status = models.CharField(_("provider status"), max_length=64)
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    error_category = models.CharField(
        _("error category"), max_length=32, blank=True, choices=ErrorCategory.choices
    )
    error_detail = models.CharField(
        _("provider error text"),
        max_length=255,
        blank=True,
        help_text=_("The provider's own words about the error, phone numbers masked."),
    )
    provider_occurred_at = models.DateTimeField(_("provider time"), null=True, blank=True)
    payload_encrypted = models.TextField(
        _("raw payload (encrypted)"),
        blank=True,
        help_text=_("The provider's fields for this event as JSON, encrypted; personal data."),
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    applied = models.BooleanField(
        _("changed the summary"),
        default=False,
        help_text=_("False when the event arrived late or ranked below the current status."),
    )
    duplicate_count = models.PositiveIntegerField(
        _("duplicates received"),
        default=0,
        help_text=_("How many more times the provider sent this same event."),
    )
    last_duplicate_at = models.DateTimeField(_("last duplicate"), null=True, blank=True)
    source = models.CharField(
        _("source"),
        max_length=8,
        choices=EventSource.choices,
        default=EventSource.WEBHOOK,
        help_text=_(
            "Webhook: the provider called us. Poll: we asked its API (reconciliation). Replay: "
            "a stored request read again by newer code."
        ),
    )

    objects = MessageEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("message event")
        verbose_name_plural = _("message events")
        ordering = ["received_at", "id"]
        get_latest_by = "received_at"
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="sms_delivery_event_dedupe"),
        ]
        indexes = [
            models.Index(fields=["message", "received_at"], name="sms_evt_timeline"),
            # Retention purges event payloads along it; health reads the latest reports.
            models.Index(fields=["received_at"], name="sms_evt_received"),
        ]

    def __str__(self):
        return f"{self.raw_status} → {self.status}"

    @property
    def precedence_key(self):
        return precedence_key(
            self.status, self.provider_occurred_at, self.error_code, self.dedupe_key
        )

    @cached_property
    def raw_payload(self) -> dict[str, Any] | None:
        """The provider's fields (decrypted; None when no configured key opens them).

        Personal data: show it only after an audited reveal.
        """
        return crypto.decrypt_json(self.payload_encrypted) if self.payload_encrypted else {}


class InboundMessageQuerySet(models.QuerySet["InboundMessage"]):
    def consent_changes(self, recipient_hash: str) -> dict[tuple[str, str], InboundMessage]:
        """A person's latest opt-out or opt-in towards each of our sender identities, keyed by
        :func:`~delivery.recipients.identity_key` (providers spell one identity differently)."""
        if not recipient_hash:
            return {}
        latest: dict[tuple[str, str], InboundMessage] = {}
        changes = (
            self.filter(sender_hash=recipient_hash)
            .exclude(consent__in=["", ConsentChange.HELP])
            .order_by("-received_at", "-id")[:200]
        )
        for change in changes:
            latest.setdefault(recipients.identity_key(change.our_identity), change)
        return latest

    def consent_for(self, recipient_hash: str, our_identity: str | None = None):
        """The latest opt-out / opt-in of a person (towards one of our senders), or None."""
        latest = self.consent_changes(recipient_hash)
        if our_identity is not None:
            return latest.get(recipients.identity_key(our_identity))
        return max(latest.values(), key=lambda c: (c.received_at, c.pk), default=None)


class InboundMessage(models.Model):
    """A message a person sent us, kept for what it says about consent (STOP, START, HELP).

    The text itself is not stored here (it stays in the raw webhook); the sender's number is
    hashed with the same key as ``Message.recipient_hash``, so the two can be matched.
    """

    provider = models.CharField(_("provider"), max_length=32)
    provider_message_id = models.CharField(_("provider message id"), max_length=64)
    raw_webhook = models.ForeignKey(
        RawWebhook,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("raw webhook"),
    )
    sender_hash = models.CharField(_("sender hash"), max_length=64, blank=True)
    sender_encrypted = models.TextField(_("sender (encrypted)"), blank=True)
    our_identity = models.CharField(
        _("received by"),
        max_length=100,
        blank=True,
        help_text=_("Our number, short code or channel address the person wrote to."),
    )
    keyword = models.CharField(_("keyword"), max_length=32, blank=True)
    consent = models.CharField(
        _("consent change"), max_length=16, blank=True, choices=ConsentChange.choices
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now)

    objects = InboundMessageQuerySet.as_manager()

    class Meta:
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")
        ordering = ["-received_at", "-id"]
        get_latest_by = "received_at"
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id"], name="sms_delivery_inbound_provider_id"
            ),
        ]
        indexes = [
            models.Index(
                fields=["sender_hash", "our_identity", "received_at"], name="sms_inbound_consent"
            ),
            models.Index(fields=["received_at"], name="sms_inbound_received"),
            models.Index(fields=["provider", "received_at"], name="sms_inbound_provider"),
            models.Index(fields=["consent", "received_at"], name="sms_inbound_consent_change"),
            models.Index(fields=["keyword", "received_at"], name="sms_inbound_keyword"),
            models.Index(fields=["our_identity", "received_at"], name="sms_inbound_identity"),
        ]

    def __str__(self):
        return f"{self.provider} {self.keyword or 'text'} {self.received_at:%Y-%m-%d %H:%M}"

    def set_sender(self, number: str) -> None:
        """Store the person's number hashed (matching ``Message.recipient_hash``) and encrypted."""
        protected = recipients.protect(number)
        if protected:
            self.sender_hash, self.sender_encrypted = protected.hash, protected.encrypted


class Erasure(models.Model):
    """The record of one erasure of a person's number (``delivery.erasure``). Append-only.

    It names the person only by the keyed hash (which stays on their messages, as statuses do)
    and says what was blanked, so an erasure can be shown to have happened.
    """

    recipient_hash = models.CharField(_("person (hash)"), max_length=64, db_index=True)
    actor = models.CharField(_("by"), max_length=150, help_text=_("Who asked for it."))
    reason = models.TextField(_("reason"), blank=True)
    touched = models.JSONField(_("what was blanked"), default=dict)
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("erasure")
        verbose_name_plural = _("erasures")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"erasure by {self.actor} on {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Erasure records are append-only.")
        super().save(*args, **kwargs)


class PurgeCheckpoint(models.Model):
    """Up to when a kind of data is known blanked (``delivery.retention``).

    A purge that finished sets it to its cutoff, so the next one starts its walk there instead
    of rereading every row it blanked before: a nightly purge then costs one day's rows, not the
    whole history.
    """

    target = models.CharField(_("data"), max_length=100, unique=True)
    blanked_before = models.DateTimeField(_("everything blanked before"))
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("purge checkpoint")
        verbose_name_plural = _("purge checkpoints")

    def __str__(self):
        return f"{self.target}: blanked before {self.blanked_before:%Y-%m-%d %H:%M}"


class Suppression(models.Model):
    """A person who must not be texted (see :mod:`delivery.suppression`). Never names the
    number: the keyed hash finds it."""

    class Source(models.TextChoices):
        KEYWORD = "keyword", _("Opt-out keyword")
        ERROR_CODE = "error_code", _("Provider error code")
        CONSOLE = "console", _("Console")

    recipient_hash = models.CharField(_("person (hash)"), max_length=64)
    scope = models.CharField(
        _("sender"),
        max_length=100,
        blank=True,
        help_text=_("The sender the opt-out came through; empty for every sender."),
    )
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    reason = models.CharField(
        _("reason"), max_length=200, blank=True, help_text=_("Keyword, error code or note.")
    )
    provider = models.CharField(_("provider"), max_length=32, blank=True)
    created_at = models.DateTimeField(_("suppressed at"), default=timezone.now)
    created_by = models.CharField(_("by"), max_length=150, blank=True)
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.CharField(_("lifted by"), max_length=150, blank=True)
    lift_reason = models.CharField(_("why lifted"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("suppression list entry")
        verbose_name_plural = _("suppression list entries")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient_hash", "scope", "source"],
                condition=models.Q(lifted_at=None),
                name="sms_suppression_one_active",
            ),
        ]
        indexes = [models.Index(fields=["recipient_hash"], name="sms_suppression_person")]

    def __str__(self):
        state = _("lifted") if self.lifted_at else _("active")
        return f"{self.get_source_display()} ({state})"

    @property
    def active(self) -> bool:
        return self.lifted_at is None


class SideEffect(models.Model):
    """A side effect of a message done once (``delivery.once.claim``): an email fallback, a
    ticket. The unique pair is what makes a second claim fail."""

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="side_effects", verbose_name=_("message")
    )
    name = models.CharField(_("side effect"), max_length=100)
    created_at = models.DateTimeField(_("done at"), default=timezone.now)

    class Meta:
        verbose_name = _("side effect")
        verbose_name_plural = _("side effects")
        constraints = [
            models.UniqueConstraint(fields=["message", "name"], name="sms_side_effect_once"),
        ]

    def __str__(self):
        return self.name


class DeliveryRollup(models.Model):
    """Messages counted by the hour they were sent and what they became: what the analytics
    page and the alert rules read (``delivery.analytics``). Rebuilt from the messages by
    ``sms_delivery_rollup``, so it is never out of step for longer than its schedule."""

    hour = models.DateTimeField(_("hour (UTC)"))
    provider = models.CharField(_("provider"), max_length=32)
    country = models.CharField(_("country"), max_length=2, blank=True)
    sender_identity = models.CharField(_("sender identity"), max_length=100, blank=True)
    template_key = models.CharField(_("template"), max_length=100, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    error_category = models.CharField(
        _("error category"), max_length=32, blank=True, choices=ErrorCategory.choices
    )
    messages = models.PositiveIntegerField(_("messages"))

    class Meta:
        verbose_name = _("delivery rollup")
        verbose_name_plural = _("delivery rollups")
        indexes = [models.Index(fields=["hour"], name="sms_rollup_hour")]


class DeliveryLatency(models.Model):
    """Delivered messages counted by the hour they were sent and how long the receipt took
    after "sent" (a histogram: the page's median and p95 come from it)."""

    hour = models.DateTimeField(_("hour (UTC)"))
    provider = models.CharField(_("provider"), max_length=32)
    #: Index into ``delivery.analytics.LATENCY_BOUNDS``: delivered within that many seconds.
    bucket = models.PositiveSmallIntegerField(_("bucket"))
    messages = models.PositiveIntegerField(_("messages"))

    class Meta:
        verbose_name = _("delivery latency")
        verbose_name_plural = _("delivery latencies")
        indexes = [models.Index(fields=["hour"], name="sms_latency_hour")]


class Alert(models.Model):
    """One incident of an alert rule (``delivery.alerts``): opened once, resolved once."""

    rule = models.CharField(_("rule"), max_length=32)
    key = models.CharField(_("what"), max_length=200, help_text=_("e.g. country:GB"))
    summary = models.CharField(_("summary"), max_length=300)
    opened_at = models.DateTimeField(_("opened"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "key"],
                condition=models.Q(resolved_at=None),
                name="sms_alert_one_open",
            ),
        ]

    def __str__(self):
        return self.summary
