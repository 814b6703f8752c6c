"""Masking of phone numbers for display: one function, replaceable by a dotted path.

``mask_phone("+14155550100") == "+1 ••• ••• 0100"``: the country code and the last four digits
stay, so an agent can tell numbers apart and confirm one with the customer, but not read it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import phonenumbers
from django.utils.module_loading import import_string

from delivery.conf import app_settings
from delivery.recipients import to_e164

DOT = "•"
# A "+"-prefixed number (also URL-encoded as %2B), or a bare run of 11-15 digits (numbers sent
# without "+", e.g. Vonage's msisdn). Ten-digit timestamps such as RawDlrDoneDate stay readable.
_PHONE_LIKE = re.compile(r"(?:\+|%2B)\d[\d\s().-]{5,}\d|(?<![\w.])\d{11,15}(?![\w.])")


def _default_mask(e164: str) -> str:
    """``+<country code> <hidden digits in threes> <last four>``, e.g. ``+1 ••• ••• 0100``."""
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return _mask_digits(e164)
    national = phonenumbers.national_significant_number(parsed)
    hidden = len(national) - 4
    if hidden < 1:
        return _mask_digits(e164)
    groups = [DOT * min(3, hidden - i) for i in range(0, hidden, 3)]
    return f"+{parsed.country_code} {' '.join(groups)} {national[-4:]}"


def _mask_digits(text: str, keep: int = 4) -> str:
    """Replace every digit but the last ``keep`` with a dot."""
    total = sum(c.isdigit() for c in text)
    seen = 0
    out = []
    for char in text:
        if char.isdigit():
            seen += 1
            out.append(char if seen > total - keep else DOT)
        else:
            out.append(char)
    return "".join(out)


def mask_phone(number: str) -> str:
    """The masked form of ``number`` (``SMS_DELIVERY['MASK_CALLABLE']`` overrides it)."""
    if not number:
        return ""
    prefix, sep, bare = number.rpartition(":")  # keep a channel prefix such as "whatsapp:"
    mask = (
        import_string(app_settings.MASK_CALLABLE) if app_settings.MASK_CALLABLE else _default_mask
    )
    return f"{prefix}{sep}{mask(bare)}"


def mask_text(text: str) -> str:
    """``text`` with every phone-number-like run of digits masked (raw bodies, free text)."""

    def replace(match: re.Match) -> str:
        found = match.group(0)
        if found.startswith("%2B"):
            return "%2B" + _mask_digits(found[3:])
        e164 = to_e164(found) if found.startswith("+") else None
        return mask_phone(e164) if e164 else _mask_digits(found)

    return _PHONE_LIKE.sub(replace, text)


def mask_data(data: Any) -> Any:
    """A JSON-like structure with phone numbers masked in every string value."""
    if isinstance(data, dict):
        return {key: mask_data(value) for key, value in data.items()}
    if isinstance(data, list):
        return [mask_data(value) for value in data]
    if isinstance(data, str):
        return mask_text(data)
    return data


def pretty(data: Any, masked: bool = True) -> str:
    """``data`` as indented JSON for display, numbers masked unless ``masked`` is False."""
    return json.dumps(
        mask_data(data) if masked else data, indent=2, sort_keys=True, ensure_ascii=False
    )
