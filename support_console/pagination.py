"""A paginator that never counts millions of rows.

``COUNT(*)`` over a large table costs a sequential or full index scan on every page view. This
paginator counts at most ``CAP`` rows (``SELECT COUNT(*) FROM (… LIMIT CAP + 1)``); beyond that
it uses PostgreSQL's planner estimate for an unfiltered list, and the cap otherwise.
"""

from __future__ import annotations

from typing import cast

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

CAP = 10_000


class CappedCountPaginator(Paginator):
    #: True when ``count`` is a lower bound or an estimate rather than exact.
    approximate = False

    @cached_property
    def count(self) -> int:
        queryset = cast(QuerySet, self.object_list)
        # Without the list's ORDER BY, PostgreSQL counts along the index that serves the
        # filter (status, country…) instead of walking the date index and filtering.
        capped = queryset.order_by()[: CAP + 1].count()
        if capped <= CAP:
            return capped
        self.approximate = True
        return max(CAP, self._estimate(queryset) or 0)

    @staticmethod
    def _estimate(queryset) -> int | None:
        """``pg_class.reltuples`` for an unfiltered PostgreSQL table, else None."""
        connection = connections[queryset.db]
        if connection.vendor != "postgresql" or queryset.query.where:
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [queryset.model._meta.db_table],
            )
            row = cursor.fetchone()
        return int(row[0]) if row and row[0] > 0 else None
