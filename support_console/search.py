"""Search by phone number without the number ever reaching a URL.

The search form posts (:meth:`NumberSearchMixin.search_view`); the list it redirects to carries
the number encrypted (``?q=number:gAAAA…``), opaque in access logs, the browser's history,
``Referer`` headers and ``_changelist_filters``. A number typed into the URL by hand is moved out
of it by a redirect. Numbers are matched through the keyed hash, never stored in clear.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import PAGE_VAR, SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from delivery import crypto
from delivery.conf import app_settings
from delivery.masking import mask_phone
from delivery.recipients import recipient_hash, to_e164

from .display import country_name

#: A searched number travels in URLs as this prefix and the number encrypted.
NUMBER_TOKEN = "number:"


def looks_like_phone_number(term: str) -> bool:
    """Digits with phone punctuation only (ids such as SM…/msg_… contain letters)."""
    digits = sum(c.isdigit() for c in term)
    return digits >= 6 and all(c.isdigit() or c in "+-.() /" for c in term)


def region_label(code: str | None) -> str:
    """ "United States (US)" for the search help; "" without a default region."""
    return f"{country_name(code) or code} ({code})" if code else ""


def number_token(term: str) -> str:
    return NUMBER_TOKEN + crypto.encrypt(term)


def searched_number(term: str) -> str | None:
    """The E.164 number behind a search token; None if ``term`` is not one, "" if unreadable."""
    if not term.startswith(NUMBER_TOKEN):
        return None
    number = crypto.decrypt(term.removeprefix(NUMBER_TOKEN))
    return to_e164(number, app_settings.DEFAULT_REGION) or ""


class NumberSearchMixin(admin.ModelAdmin):
    """A changelist searched by phone number (through ``number_hash_field``) or by what
    :meth:`search_other` accepts."""

    number_hash_field: str  #: the model's keyed-hash column of the number
    change_list_template = "support_console/number_search_change_list.html"
    search_fields = ("pk",)  # replaced by get_search_results; shows the search box

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
        context = {
            "search_shown": term if number is None else (mask_phone(number) or "•••"),
            "search_region": region_label(app_settings.DEFAULT_REGION),
        }
        return super().changelist_view(request, {**(extra_context or {}), **context})

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

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        number = searched_number(term)
        if number is None:
            return self.search_other(queryset, term), False
        if not number:
            return queryset.none(), False
        return queryset.filter(**{self.number_hash_field: recipient_hash(number)}), False

    def search_other(self, queryset, term: str):
        """Results for a term that is not a phone number (exact matches only: indexes)."""
        return queryset.none()
