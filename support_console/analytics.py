"""The "Delivery analytics" page: delivery rate and failure reasons by country, provider, sender
and template over a window, against the window before; receipt times; open alerts.

Charts are SVG drawn on the server (no script, no CDN); every bar carries its figure as text and
the table of numbers is one click away under it. Colours come from the Okabe–Ito palette, and
nothing is told by colour alone: a change is an arrow and a signed number, a missing receipt a
hatched bar and words. No phone number or message id is on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.dateparse import parse_date

from delivery import analytics
from delivery.lifecycle import ErrorCategory
from delivery.models import Alert, Message

from .display import country_name, flag
from .models import DeliveryAnalytics
from .read_only import ReadOnlyAdmin

WINDOWS = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}
#: Below this many finished messages a group's rate swings too much to highlight its change.
FEW = 20
#: Okabe–Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


@dataclass(frozen=True)
class Bar:
    label: str
    title: str  #: the label's long form (a country's name)
    row: analytics.Row

    @property
    def width(self) -> float:
        """Percent of the track the bar fills."""
        rate = self.row.now.rate
        return round(rate * 100, 1) if rate is not None else 100.0

    @property
    def before(self) -> float | None:
        rate = self.row.before.rate
        return round(rate * 100, 1) if rate is not None else None

    @property
    def few(self) -> bool:
        return self.row.now.judged < FEW

    @property
    def dropped(self) -> bool:
        """Highlighted: more than 10 points lost, on enough messages to mean something."""
        return not self.few and self.row.change is not None and self.row.change < -10

    @property
    def main_reason(self) -> str:
        """The failure reason of most of this group's failed messages, with its share."""
        reasons = self.row.now.reasons
        if not reasons:
            return ""
        category, count = max(reasons.items(), key=lambda kv: kv[1])
        return f"{reason_label(category)} ({count / sum(reasons.values()):.0%})"

    @property
    def change_text(self) -> str:
        change = self.row.change
        if change is None:
            return ""
        arrow = "▲" if change > 0.05 else "▼" if change < -0.05 else "="
        return f"{arrow} {change:+.1f} pts"


@dataclass(frozen=True)
class Slice:
    label: str
    count: int
    share: float  #: of the failures
    offset: float  #: percent from the left of the stacked bar
    colour: str


def reason_label(category: str) -> str:
    """An error category as the page names it ("none": failed without an error code)."""
    return str(dict(ErrorCategory.choices).get(category, "No error code"))


def reason_slices(reasons: dict[str, int]) -> list[Slice]:
    total = sum(reasons.values())
    slices, offset = [], 0.0
    for n, (category, count) in enumerate(sorted(reasons.items(), key=lambda kv: -kv[1])):
        share = count / total * 100
        slices.append(
            Slice(reason_label(category), count, share, offset, PALETTE[n % len(PALETTE)])
        )
        offset += share
    return slices


def chosen_window(request) -> tuple[str, datetime, datetime]:
    """The window the page shows: a named one, or ``custom`` from two dates (whole UTC days)."""
    name = request.GET.get("window", "7d")
    if name == "custom":
        start = parse_date(request.GET.get("from", "") or "")
        end = parse_date(request.GET.get("to", "") or "")
        if start and end and start <= end and (end - start).days <= 366:
            return (
                name,
                datetime.combine(start, time.min, tzinfo=UTC),
                datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
            )
        name = "7d"
    if name not in WINDOWS:
        name = "7d"
    start, end = analytics.window(name)
    return name, start, end


def stale(report: analytics.Report) -> bool:
    """Messages were created after the last hour the rollup counted (with an hour's grace for
    its schedule): the figures miss them."""
    newest = Message.objects.order_by("-created_at").values_list("created_at", flat=True).first()
    if newest is None:
        return False
    counted = report.rebuilt_through
    return counted is None or analytics.hour_of(newest) > counted + timedelta(hours=1)


@admin.register(DeliveryAnalytics)
class DeliveryAnalyticsAdmin(ReadOnlyAdmin):
    """One page, no list: the admin index links it as "Delivery analytics"."""

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        name, start, end = chosen_window(request)
        report = analytics.report(start, end)
        breakdowns = [
            (dimension, [self._bar(dimension, row) for row in rows])
            for dimension, rows in report.breakdowns.items()
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Delivery analytics",
            "report": report,
            "window": name,
            "windows": WINDOWS,
            "from": request.GET.get("from", ""),
            "to": request.GET.get("to", ""),
            "breakdowns": breakdowns,
            "reasons": reason_slices(report.total.now.reasons),
            "alerts": Alert.objects.filter(resolved_at=None)[:20],
            "stale": stale(report),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "support_console/analytics.html", context)

    @staticmethod
    def _bar(dimension: str, row: analytics.Row) -> Bar:
        if dimension == "country" and row.key != "—":
            return Bar(f"{flag(row.key)} {row.key}", country_name(row.key) or row.key, row)
        name = analytics.shown(dimension, row.key)
        return Bar(name, name, row)
