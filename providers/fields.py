"""Small parsing helpers the adapters share: fields as text, numbers, numbers without "+"."""

from __future__ import annotations

from typing import Any

from delivery.exceptions import MalformedPayload


def int_or_none(value: Any) -> int | None:
    """An integer field as a number; None when missing or not a finite integer."""
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def text_field(params, *names: str) -> str:
    """The first non-empty of fields ``names`` as text ("" if none is set).

    Form fields are always text; a JSON body may hold anything, and a number is read as its
    digits while a list, an object or a boolean is unreadable (MalformedPayload names it).
    """
    for name in names:
        value = params.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise MalformedPayload(f"{name} is {type(value).__name__}, not text.")
        return str(value)
    return ""


def form_fields(params) -> dict:
    """Every field as received (unknown ones included); repeated form fields become lists."""
    if hasattr(params, "lists"):
        return {key: values[0] if len(values) == 1 else values for key, values in params.lists()}
    return dict(params)


def with_plus(number: str) -> str:
    """Numbers some providers send as E.164 without the "+" (``447700900001``), made parseable."""
    return f"+{number}" if number.isdigit() else number
