"""Times on the console's pages: a local time always carries its UTC offset.

Django's ``T`` format is empty for a time in the hour repeated when clocks go back, so two events
an hour apart could both read ``01:30``; the offset tells them apart (``01:30 PDT (UTC−07:00)``,
then ``01:30 PST (UTC−08:00)``).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django import template

register = template.Library()


def _in(value: datetime, zone: str) -> datetime:
    return value.astimezone(ZoneInfo(zone))


def offset(value: datetime) -> str:
    """``UTC+05:30``, ``UTC−08:00``, ``UTC`` for a local datetime."""
    delta = value.utcoffset()
    minutes = int(delta.total_seconds() // 60) if delta is not None else 0
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "−"
    hours, minutes = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


@register.filter
def local_date(value: datetime | None, zone: str) -> str:
    """The date of ``value`` in ``zone``: ``2026-12-01``."""
    return _in(value, zone).strftime("%Y-%m-%d") if value else ""


@register.filter
def local_time(value: datetime | None, zone: str) -> str:
    """The time of ``value`` in ``zone`` with its abbreviation and offset:
    ``07:35:11 PST (UTC−08:00)``; zones without a letter abbreviation show the offset only."""
    if not value:
        return ""
    local = _in(value, zone)
    name = local.tzname() or ""
    when = local.strftime("%H:%M:%S")
    if not name or name[0] in "+-":  # the tz database's numeric "abbreviations" (+05, -03)
        return f"{when} {offset(local)}"
    return f"{when} {name} ({offset(local)})"
