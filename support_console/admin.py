"""The support console: Django admin for delivery records, read-only, numbers masked."""

from __future__ import annotations

from datetime import UTC

from django import forms
from django.contrib import admin
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters

from delivery.conf import app_settings
from delivery.crypto import decrypt
from delivery.masking import mask_phone, mask_text
from delivery.models import (
    VIEW_RAW_PAYLOAD,
    Alert,
    InboundMessage,
    Message,
    RawWebhook,
    Suppression,
)
from delivery.recipients import recipient_hash, to_e164
from delivery.suppression import active_for

from . import analytics  # noqa: F401 - registers the "Delivery analytics" page
from .audit import record_reveal
from .display import country_name, flag, status_badge
from .filters import (
    ActiveFilter,
    CountryFilter,
    FinalFilter,
    KeywordFilter,
    OurIdentityFilter,
    PersonHashFilter,
    ProviderFilter,
    ReviewFilter,
    SenderFilter,
    SenderHashFilter,
    TemplateFilter,
)
from .models import RevealLog
from .pagination import CappedCountPaginator
from .read_only import ReadOnlyAdmin
from .replay import ReplayActionMixin
from .search import NumberSearchMixin
from .views import MessagePagesMixin, RawWebhookPagesMixin


@admin.register(Message)
class MessageAdmin(MessagePagesMixin, NumberSearchMixin, ReadOnlyAdmin):
    # What an agent scans for in a list, within a 1366-pixel laptop screen next to the admin's
    # sidebars: which message, to whom, how it ended and why, where, when. Provider, sender,
    # template and the last report's time are on the message page and in the filters.
    list_display = ("public_id", "masked_recipient", "status", "country", "created")
    list_filter = (
        "current_status",
        FinalFilter,
        CountryFilter,
        ProviderFilter,
        SenderFilter,
        TemplateFilter,
        "error_category",
        ReviewFilter,
        ("created_at", admin.DateFieldListFilter),
    )
    number_hash_field = "recipient_hash"
    search_help_text = _(
        "Exact match: a phone number in any format, a provider message id, or a public id."
    )
    ordering = ("-created_at", "-id")
    sortable_by = ("created",)  # only indexed orderings
    list_per_page = 50
    paginator = CappedCountPaginator
    show_full_result_count = False  # no second COUNT(*) of the whole table

    class Media:
        css = {"all": ["support_console/console.css"]}

    @admin.display(description=_("recipient"))
    def masked_recipient(self, message):
        return mask_phone(message.recipient) or "—"

    @admin.display(description=_("status"), ordering="current_status")
    def status(self, message):
        """The badge, and why it failed beneath it (the error category)."""
        if not message.error_category:
            return status_badge(message.current_status)
        return format_html(
            '{}<div class="sms-why">{}</div>',
            status_badge(message.current_status),
            message.get_error_category_display(),
        )

    @admin.display(description=_("created (UTC)"), ordering="created_at")
    def created(self, message):
        return format_html(
            '<time datetime="{}">{}</time>',
            message.created_at.isoformat(),
            message.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        )

    @admin.display(description=_("country"))
    def country(self, message):
        code = message.destination_country
        return format_html(
            '<span title="{}">{} {}</span>', country_name(code), flag(code), code or "—"
        )

    def search_other(self, queryset, term):
        return queryset.filter(Q(public_id=term) | Q(provider_message_id=term))


class ParseFailedFilter(admin.SimpleListFilter):
    title = _("parsing")
    parameter_name = "parse_failed"

    def lookups(self, request, model_admin):
        return [("yes", _("Could not be parsed (review)"))]

    def queryset(self, request, queryset):
        return queryset.exclude(parse_error="") if self.value() == "yes" else queryset


@admin.register(RawWebhook)
class RawWebhookAdmin(ReplayActionMixin, RawWebhookPagesMixin, ReadOnlyAdmin):
    """The raw requests (review queue: requests that could not be parsed). Bodies are shown
    only on the request's own page, behind a reason, audited."""

    list_display = (
        "received_at",
        "provider",
        "account",
        "method",
        "signature_valid",
        "parse_error",
    )
    list_filter = (ParseFailedFilter, ProviderFilter, ("received_at", admin.DateFieldListFilter))
    ordering = ("-received_at", "-id")
    sortable_by = ("received_at",)
    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and request.user.has_perm(VIEW_RAW_PAYLOAD)


@admin.register(InboundMessage)
class InboundMessageAdmin(NumberSearchMixin, ReadOnlyAdmin):
    """Messages people sent us, reduced to their consent change (opt-out, opt-in, help); the
    text itself stays in the raw request. Numbers masked; search by the sender's number."""

    list_display = (
        "received_at",
        "masked_sender",
        "our_identity",
        "keyword",
        "consent",
        "provider",
    )
    list_filter = (
        "consent",
        KeywordFilter,
        ProviderFilter,
        OurIdentityFilter,
        SenderHashFilter,
        ("received_at", admin.DateFieldListFilter),
    )
    fields = readonly_fields = (
        "received_at",
        "masked_sender",
        "our_identity",
        "keyword",
        "consent",
        "provider",
        "provider_message_id",
    )
    number_hash_field = "sender_hash"
    search_help_text = _("Exact match: the sender's phone number in any format.")
    ordering = ("-received_at", "-id")
    sortable_by = ("received_at",)
    paginator = CappedCountPaginator
    show_full_result_count = False

    class Media:
        css = {"all": ["support_console/console.css"]}

    @admin.display(description=_("from"))
    def masked_sender(self, inbound):
        return mask_phone(decrypt(inbound.sender_encrypted)) or "—"


@admin.register(RevealLog)
class RevealLogAdmin(ReadOnlyAdmin):
    """Admins read the audit trail here; nobody can change or delete it through the admin."""

    list_display = (
        "created_at",
        "username",
        "message_public_id",
        "raw_webhook",
        "kind",
        "reason",
        "ip_address",
    )
    list_filter = ("kind", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=username", "=message_public_id")
    readonly_fields = [f.name for f in RevealLog._meta.fields]
    paginator = CappedCountPaginator
    show_full_result_count = False


class NoEchoInput(forms.TextInput):
    """A text box that never shows its value back (a form with errors comes back empty)."""

    def format_value(self, value):
        return None


class SuppressionForm(forms.ModelForm):
    """A lead adds a number: it is hashed at once, never stored or shown in clear."""

    number = forms.CharField(
        label=_("Phone number"),
        help_text=_("Any format; stored only as its keyed hash."),
        widget=NoEchoInput(attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = Suppression
        fields = ("number", "scope", "reason")

    def clean(self):
        cleaned = super().clean() or {}
        e164 = to_e164(cleaned.get("number", ""), app_settings.DEFAULT_REGION)
        if not e164:
            raise forms.ValidationError(_("That is not a phone number."))
        self.instance.recipient_hash = recipient_hash(e164)
        if active_for(self.instance.recipient_hash).filter(scope=cleaned.get("scope", "")):
            raise forms.ValidationError(_("That number is already suppressed for this sender."))
        return cleaned


@admin.register(Suppression)
class SuppressionAdmin(NumberSearchMixin, admin.ModelAdmin):
    """The suppression list: who must not be texted, since when and why. Numbers are never
    shown (only hashes are kept); search by number. Leads add entries and lift them, audited."""

    show_facets = admin.ShowFacets.NEVER
    form = SuppressionForm
    list_display = ("since", "active", "source", "reason", "sender", "provider", "lifted_at")
    list_filter = (
        ActiveFilter,
        "source",
        PersonHashFilter,
        ("created_at", admin.DateFieldListFilter),
    )
    number_hash_field = "recipient_hash"
    search_help_text = _("Exact match: a phone number in any format.")
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    paginator = CappedCountPaginator
    show_full_result_count = False
    actions = ["lift"]
    readonly_fields = (
        "active",
        "source",
        "reason",
        "sender",
        "provider",
        "created_at",
        "created_by",
        "lifted_at",
        "lifted_by",
        "lift_reason",
    )

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj else ("number", "scope", "reason")

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else ()

    def has_delete_permission(self, request, obj=None):
        return False  # history: an entry is lifted, never deleted

    @admin.display(boolean=True, description=_("active"))
    def active(self, entry):
        return entry.active

    @admin.display(description=_("since (UTC)"), ordering="created_at")
    def since(self, entry):
        return entry.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")

    @admin.display(description=_("sender"))
    def sender(self, entry):
        return entry.scope or _("every sender")

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing on an entry's page can be edited
        obj.source = Suppression.Source.CONSOLE
        obj.created_by = request.user.get_username()
        obj.reason = mask_text(obj.reason, typed=True)
        try:
            with transaction.atomic():
                obj.save()
                record_reveal(
                    request,
                    None,
                    RevealLog.Kind.SUPPRESS,
                    f"entry {obj.pk} (person {obj.recipient_hash[:12]}…): {obj.reason or '—'}",
                )
        except IntegrityError:  # the same entry, submitted twice at once: keep the first
            obj.pk = (
                active_for(obj.recipient_hash)
                .filter(scope=obj.scope)
                .values_list("pk", flat=True)[0]
            )

    @method_decorator(sensitive_post_parameters("number"))
    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, extra_context)

    @admin.action(permissions=["change"], description=_("Lift the selected suppressions"))
    def lift(self, request, queryset):
        by = request.user.get_username()
        with transaction.atomic():
            active = queryset.filter(lifted_at=None)
            ids = list(active.values_list("pk", flat=True))
            lifted = active.update(
                lifted_at=timezone.now(), lifted_by=by, lift_reason=_("lifted in the console")
            )
            listed = ", ".join(map(str, ids[:50])) + ("…" if len(ids) > 50 else "")
            record_reveal(request, None, RevealLog.Kind.LIFT, f"entries {listed or '—'}")
        self.message_user(request, _("%(n)d suppression(s) lifted.") % {"n": lifted})


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    """Alerts as the rules opened and resolved them (``manage.py sms_delivery_alerts``)."""

    list_display = ("opened_at", "rule", "summary", "last_seen_at", "resolved_at")
    list_filter = ("rule", ("opened_at", admin.DateFieldListFilter))
    ordering = ("-opened_at", "-id")
    paginator = CappedCountPaginator
    show_full_result_count = False
