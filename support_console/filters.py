"""Console filters that stay fast on millions of rows.

Choices of open-ended fields (provider, country, sender, template, keyword) are the values
present, read with an index skip scan on PostgreSQL (one index probe per distinct value, however
many rows share it) and cached for a few minutes.
"""

from __future__ import annotations

from typing import cast

from django.contrib import admin
from django.core.cache import cache
from django.db import connections, router
from django.db.models import Field, Model
from django.utils.translation import gettext_lazy as _

from delivery.lifecycle import FINAL_STATUSES, PENDING_STATUSES

from .display import country_label

CHOICES_TTL = 300
#: At most this many choices in a filter's sidebar.
MAX_CHOICES = 500


def distinct_values(model: type[Model], field: str) -> list[str]:
    """The non-empty values of ``field`` in ``model``'s table, sorted, at most MAX_CHOICES.

    ``SELECT DISTINCT`` reads every row (seconds at a million); PostgreSQL has no skip scan of
    its own, so a recursive query asks an index that starts with ``field`` for the next larger
    value, once per value. Every field filtered this way has such an index (see the models).
    """
    using = router.db_for_read(model)
    connection = connections[using]
    if connection.vendor != "postgresql":
        values = model._default_manager.using(using).order_by(field).values_list(field, flat=True)
        return [v for v in values.distinct()[: MAX_CHOICES + 1] if v][:MAX_CHOICES]
    quote = connection.ops.quote_name
    column = quote(str(cast(Field, model._meta.get_field(field)).column))
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH RECURSIVE found(value) AS (
                    (SELECT {column} FROM {table} WHERE {column} > '' ORDER BY {column} LIMIT 1)
                    UNION ALL
                    SELECT (SELECT {column} FROM {table} WHERE {column} > found.value
                            ORDER BY {column} LIMIT 1)
                    FROM found WHERE found.value IS NOT NULL
                )
                SELECT value FROM found WHERE value IS NOT NULL LIMIT %s""",  # noqa: S608 - names
            [MAX_CHOICES],
        )
        # Sorted here, by code point, as on every database (PostgreSQL's order is its collation's).
        return sorted(row[0] for row in cursor.fetchall())


class CachedDistinctFilter(admin.SimpleListFilter):
    """Filter on a plain field whose choices are the values present (cached)."""

    field: str

    def lookups(self, request, model_admin):
        model = model_admin.model
        key = f"sms_delivery:filter:{model._meta.label_lower}:{self.field}"
        values = cache.get(key)
        if values is None:
            values = distinct_values(model, self.field)
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

    def label_for(self, value):
        return value.capitalize()


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


class PersonHashFilter(admin.SimpleListFilter):
    """``?person=<keyed hash>``: one person's rows, linked from a message page (the hash is
    opaque; the number never appears in the URL). Not shown in the sidebar."""

    title = _("person")
    parameter_name = "person"
    field = "recipient_hash"

    def lookups(self, request, model_admin):
        return []

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field: self.value()}) if self.value() else queryset


class SenderHashFilter(PersonHashFilter):
    """``?sender=<keyed hash>``: the messages one person sent us."""

    title = _("sender")
    parameter_name = "sender"
    field = "sender_hash"


class FinalFilter(admin.SimpleListFilter):
    title = _("final or pending")
    parameter_name = "final"

    def lookups(self, request, model_admin):
        return [("yes", _("Final")), ("no", _("Pending (may still change)"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(current_status__in=FINAL_STATUSES)
        if self.value() == "no":
            return queryset.filter(current_status__in=PENDING_STATUSES)
        return queryset


class ReviewFilter(admin.SimpleListFilter):
    title = _("review queue")
    parameter_name = "needs_review"

    def lookups(self, request, model_admin):
        return [("yes", _("Needs review"))]

    def queryset(self, request, queryset):
        return queryset.filter(needs_review=True) if self.value() == "yes" else queryset


class ActiveFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [("yes", _("Active")), ("no", _("Lifted"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(lifted_at__isnull=self.value() == "yes")
        return queryset
