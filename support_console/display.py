"""Small presentation helpers: country names and flags, status badges, durations."""

from __future__ import annotations

from datetime import timedelta

from django.utils.html import format_html
from django_countries import countries

from delivery.lifecycle import FAILURE_STATUSES, Status

#: CSS class of each status badge: green delivered, red failures, blue in flight, grey unknown.
BADGE_CLASS: dict[str, str] = {
    Status.DELIVERED: "ok",
    Status.READ: "ok",
    Status.ACCEPTED: "flight",
    Status.SENT: "flight",
    Status.UNKNOWN: "unknown",
    **{status: "fail" for status in FAILURE_STATUSES},
}


def status_badge(status: str) -> str:
    label = Status(status).label if status in Status.values else status
    return format_html(
        '<span class="sms-badge sms-badge--{}">{}</span>', BADGE_CLASS.get(status, "unknown"), label
    )


def flag(code: str) -> str:
    """The flag emoji of an ISO 3166-1 alpha-2 code (regional indicator symbols)."""
    if len(code) != 2 or not code.isalpha():
        return ""
    return "".join(chr(0x1F1E6 + ord(c) - ord("A")) for c in code.upper())


def country_name(code: str) -> str:
    """The country's name in the active language ("" for an unknown code), from
    django-countries' table: phonenumbers' geocoder would load ~100 MiB of data into every
    worker for these few hundred names."""
    return str(countries.name(code)) if code else ""


def country_label(code: str) -> str:
    if not code:
        return "—"
    name = country_name(code)
    return f"{flag(code)} {code}" + (f" · {name}" if name else "")


def duration(delta: timedelta | None) -> str:
    """``timedelta`` as "850 ms", "4.2 s", "3 min 5 s", "2 h 10 min" or "3 d 4 h"."""
    if delta is None:
        return ""
    seconds = delta.total_seconds()
    sign = "−" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{sign}{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{sign}{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{sign}{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{sign}{days} d {hours} h"
