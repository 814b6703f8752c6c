"""Figures as the analytics page writes them."""

from django import template

from ..display import duration

register = template.Library()


@register.filter
def percent(share: float | None) -> str:
    """0.9234 -> "92.3 %"."""
    return "—" if share is None else f"{share * 100:.1f} %"


@register.filter
def thousands(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


@register.filter
def seconds(value: float | None) -> str:
    from datetime import timedelta

    return "—" if value is None else duration(timedelta(seconds=value))
