"""Console filters that stay fast on millions of rows.

Choices of open-ended fields (country, provider, sender, template) come from a cached DISTINCT,
refreshed every few minutes, rather than from a DISTINCT over the whole table on every page.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.cache import cache
from django.utils.translation import gettext_lazy as _

from delivery.lifecycle import FINAL_STATUSES

from .display import country_label

CHOICES_TTL = 300


class CachedDistinctFilter(admin.SimpleListFilter):
    """Filter on a plain field whose choices are the values present (cached)."""

    field: str

    def lookups(self, request, model_admin):
        model = model_admin.model
        key = f"sms_delivery:filter:{model._meta.model_name}:{self.field}"
        values = cache.get(key)
        if values is None:
            values = sorted(
                v
                for v in model.objects.order_by()
                .values_list(self.field, flat=True)
                .distinct()[:500]
                if v
            )
            cache.set(key, values, CHOICES_TTL)
        return [(value, self.label_for(value)) for value in values]

    def label_for(self, value):
        return value

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class CountryFilter(CachedDistinctFilter):
    title = _("destination country")
    parameter_name = field = "destination_country"

    def label_for(self, value):
        return country_label(value)


class ProviderFilter(CachedDistinctFilter):
    title = _("provider")
    parameter_name = field = "provider"


class SenderFilter(CachedDistinctFilter):
    title = _("sender identity")
    parameter_name = field = "sender_identity"


class TemplateFilter(CachedDistinctFilter):
    title = _("template")
    parameter_name = field = "template_key"


class OurIdentityFilter(CachedDistinctFilter):
    title = _("received by")
    parameter_name = field = "our_identity"


class KeywordFilter(CachedDistinctFilter):
    title = _("keyword")
    parameter_name = field = "keyword"


class SenderHashFilter(admin.SimpleListFilter):
    """``?sender=<keyed hash>``: one person's messages, linked from a message page (the hash is
    opaque; the number never appears in the URL). Not shown in the sidebar."""

    title = _("sender")
    parameter_name = "sender"

    def lookups(self, request, model_admin):
        return []

    def queryset(self, request, queryset):
        return queryset.filter(sender_hash=self.value()) if self.value() else queryset


class FinalFilter(admin.SimpleListFilter):
    title = _("final or pending")
    parameter_name = "final"

    def lookups(self, request, model_admin):
        return [("yes", _("Final")), ("no", _("Pending (may still change)"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(current_status__in=FINAL_STATUSES)
        if self.value() == "no":
            return queryset.exclude(current_status__in=FINAL_STATUSES)
        return queryset


class ReviewFilter(admin.SimpleListFilter):
    title = _("review queue")
    parameter_name = "needs_review"

    def lookups(self, request, model_admin):
        return [("yes", _("Needs review"))]

    def queryset(self, request, queryset):
        return queryset.filter(needs_review=True) if self.value() == "yes" else queryset
