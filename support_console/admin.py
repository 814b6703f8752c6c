"""The support console: Django admin for delivery records, read-only, numbers masked."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from delivery import crypto
from delivery.conf import app_settings
from delivery.masking import mask_phone
from delivery.models import VIEW_RAW_PAYLOAD, Message, RawWebhook
from delivery.recipients import recipient_hash, to_e164

from .display import country_name, flag, status_badge
from .filters import (
    CountryFilter,
    FinalFilter,
    ProviderFilter,
    ReviewFilter,
    SenderFilter,
    TemplateFilter,
)
from .models import RevealLog
from .pagination import CappedCountPaginator
from .views import MessagePagesMixin, RawWebhookPagesMixin


def looks_like_phone_number(term: str) -> bool:
    """Digits with phone punctuation only (ids such as SM…/msg_… contain letters)."""
    digits = sum(c.isdigit() for c in term)
    return digits >= 6 and all(c.isdigit() or c in "+-.() /" for c in term)


#: A searched number travels in URLs as this prefix and the number encrypted: opaque in access
#: logs, browser history and ``_changelist_filters``, readable only by the console.
NUMBER_TOKEN = "number:"


def number_token(term: str) -> str:
    return NUMBER_TOKEN + crypto.encrypt(term)


def searched_number(term: str) -> str | None:
    """The E.164 number behind a search token; None if ``term`` is not one (or is unreadable)."""
    if not term.startswith(NUMBER_TOKEN):
        return None
    number = crypto.decrypt(term.removeprefix(NUMBER_TOKEN))
    return to_e164(number, app_settings.DEFAULT_REGION) or ""


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence is never added, edited or deleted through the console."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(MessagePagesMixin, ReadOnlyAdmin):
    list_display = (
        "public_id",
        "masked_recipient",
        "status",
        "country",
        "provider",
        "sender_identity",
        "template_key",
        "created_at",
        "last_event_at",
        "error_category",
    )
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
    search_fields = ("public_id",)  # replaced by get_search_results; shows the search box
    search_help_text = _(
        "Exact match: a phone number in any format, a provider message id, or a public id."
    )
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)  # only indexed orderings
    list_per_page = 50
    paginator = CappedCountPaginator
    show_full_result_count = False  # no second COUNT(*) of the whole table
    change_list_template = "support_console/message_change_list.html"

    class Media:
        css = {"all": ["support_console/console.css"]}

    # -- search without numbers in URLs ----------------------------------------------------

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_search"
        view = self.admin_site.admin_view(require_POST(self.search_view))
        return [path("search/", view, name=name), *super().get_urls()]

    def search_view(self, request):
        """The search form posts here; answer with the list, the number replaced by a token."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return self._search_redirect(request.POST)

    def changelist_view(self, request, extra_context=None):
        term = request.GET.get(SEARCH_VAR, "").strip()
        if looks_like_phone_number(term):  # a number typed into the URL itself: move it out
            return self._search_redirect(request.GET)
        number = searched_number(term)
        shown = term if number is None else (mask_phone(number) or "•••")
        return super().changelist_view(request, {**(extra_context or {}), "search_shown": shown})

    def _search_redirect(self, params) -> HttpResponseRedirect:
        query = params.copy()
        for name in ("csrfmiddlewaretoken", PAGE_VAR):
            query.pop(name, None)
        term = query.pop(SEARCH_VAR, [""])[-1].strip()
        if term:
            query[SEARCH_VAR] = number_token(term) if looks_like_phone_number(term) else term
        url = reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
        )
        return HttpResponseRedirect(f"{url}?{query.urlencode()}" if query else url)

    @admin.display(description=_("recipient"))
    def masked_recipient(self, message):
        return mask_phone(message.recipient) or "—"

    @admin.display(description=_("status"), ordering="current_status")
    def status(self, message):
        return status_badge(message.current_status)

    @admin.display(description=_("country"))
    def country(self, message):
        code = message.destination_country
        return format_html(
            '<span title="{}">{} {}</span>', country_name(code), flag(code), code or "—"
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        number = searched_number(term)
        if number is not None:
            if not number:
                return queryset.none(), False
            return queryset.filter(recipient_hash=recipient_hash(number)), False
        return queryset.filter(Q(public_id=term) | Q(provider_message_id=term)), False


class ParseFailedFilter(admin.SimpleListFilter):
    title = _("parsing")
    parameter_name = "parse_failed"

    def lookups(self, request, model_admin):
        return [("yes", _("Could not be parsed (review)"))]

    def queryset(self, request, queryset):
        return queryset.exclude(parse_error="") if self.value() == "yes" else queryset


@admin.register(RawWebhook)
class RawWebhookAdmin(RawWebhookPagesMixin, ReadOnlyAdmin):
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
    list_filter = (ParseFailedFilter, "provider", ("received_at", admin.DateFieldListFilter))
    ordering = ("-received_at", "-id")
    sortable_by = ("received_at",)
    paginator = CappedCountPaginator
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and request.user.has_perm(VIEW_RAW_PAYLOAD)


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
