"""Phone numbers never leave the app in clear: one masking for pages, stored text and logs.

``mask_phone("+14155550100") == "+1 ••• ••• 0100"``: the country code and the last four digits
stay, so an agent can tell numbers apart and confirm one with the customer, but not read it.
``mask_text`` finds numbers inside free text (bodies, URLs, provider error texts, exception
messages); :class:`MaskPhoneNumbers` applies it to log records, tracebacks included.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import phonenumbers
from django.utils.html import escape
from django.utils.module_loading import import_string

from .conf import app_settings

DOT = "•"
#: Number-like runs in machine text: "+"-prefixed (also URL-encoded as %2B) with optional
#: separators; a bare run of 11-15 digits (E.164 sent without "+", e.g. Vonage's msisdn); and the
#: North American shape "(555) 867-5310" / "555-867-5310". Ten-digit runs such as Twilio's
#: RawDlrDoneDate or Unix times stay readable.
_PLUS_NUMBER = r"(?:\+|%2B)\d[\d ().\-]{5,}\d"
_PHONE_LIKE = re.compile(
    _PLUS_NUMBER
    + r"|(?<![\w.])\d{11,15}(?![\w.])"
    + r"|(?<![\w.])\(?\d{3}\)?[ .\-]\d{3}[ .\-]\d{4}(?![\w.])"
)
_INTERNATIONAL = re.compile(_PLUS_NUMBER)
#: Fields that hold a phone number in providers' query strings, forms and JSON. Their values are
#: masked whatever their length, "+" or not: Vonage's ``msisdn`` and Plivo's ``To`` come without
#: "+", and a Danish number so written has only ten digits.
_NUMBER_FIELD = re.compile(
    r"(?i)(?<![\w-])"
    r"((?:msisdn|to|from|phone_?number|phone|recipient|sender|channel_?to_?address)"
    r"(?:=|[\"']\s*:\s*[\"']))"
    r"([^&\"'\s]*)"
)
#: In text people type (a reveal reason), any run of seven or more digits, separators allowed.
_TYPED_NUMBER = re.compile(r"\d[\d ().\-/]{5,}\d")


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


_TOKEN = re.compile(r"%[0-9A-Fa-f]{2}|.", re.DOTALL)


def _mask_digits(text: str, keep: int = 4) -> str:
    """Replace every digit but the last ``keep`` with a dot (URL escapes such as %2B kept)."""
    tokens = _TOKEN.findall(text)
    total = sum(token.isdigit() for token in tokens)
    seen = 0
    out = []
    for token in tokens:
        if token.isdigit():
            seen += 1
            out.append(token if seen > total - keep else DOT)
        else:
            out.append(token)
    return "".join(out)


def mask_phone(number: str) -> str:
    """The masked form of ``number`` (``SMS_DELIVERY['MASK_CALLABLE']`` overrides it)."""
    if not number:
        return ""
    prefix, sep, bare = number.rpartition(":")  # keep a channel prefix such as "whatsapp:"
    custom = app_settings.MASK_CALLABLE
    mask = import_string(custom) if custom else _default_mask
    return f"{prefix}{sep}{mask(bare)}"


def _replace(match: re.Match) -> str:
    found = match.group(0)
    if found.startswith("%2B"):
        return "%2B" + _mask_digits(found[3:])
    if found.startswith("+"):
        digits = "+" + "".join(c for c in found if c.isdigit())
        try:
            parsed = phonenumbers.parse(digits)
        except phonenumbers.NumberParseException:
            return _mask_digits(found)
        if phonenumbers.is_possible_number(parsed):
            return mask_phone(digits)
    return _mask_digits(found)


def _mask_field(match: re.Match) -> str:
    value = match.group(2)
    if sum(c.isdigit() for c in value) < 5:  # a sender id such as "Acme", a short code
        return match.group(0)
    return match.group(1) + _mask_digits(value)


def _mask_typed(match: re.Match) -> str:
    found = match.group(0)
    return _mask_digits(found) if sum(c.isdigit() for c in found) >= 7 else found


def mask_text(text: str, typed: bool = False) -> str:
    """``text`` with every phone-number-like run masked.

    ``typed``: text a person wrote (a reveal reason), where a number may take any national
    shape: every run of seven or more digits is masked too (a long ticket number as well).
    """
    if not text:
        return text
    masked = _PHONE_LIKE.sub(_replace, _NUMBER_FIELD.sub(_mask_field, text))
    return _TYPED_NUMBER.sub(_mask_typed, masked) if typed else masked


def has_international_number(text: str) -> bool:
    """Whether ``text`` holds a "+"-prefixed number. Unlike ``mask_text``'s digit runs, this
    never matches inside a provider's id (a UUID's last group may be twelve digits)."""
    return _INTERNATIONAL.search(text) is not None


def mask_data(data: Any) -> Any:
    """A JSON-like structure with phone numbers masked in every string, keys included."""
    if isinstance(data, dict):
        return {mask_text(str(key)): mask_data(value) for key, value in data.items()}
    if isinstance(data, list):
        return [mask_data(value) for value in data]
    if isinstance(data, str):
        return mask_text(data)
    return data


def pretty(data: Any, masked: bool = True) -> str:
    """``data`` as indented JSON for display, numbers masked unless ``masked`` is False.

    Lone surrogates (a provider may send ``"\\ud800"``) are shown escaped: a page cannot be
    encoded with them.
    """
    text = json.dumps(
        mask_data(data) if masked else data, indent=2, sort_keys=True, ensure_ascii=False
    )
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


class Revealed:
    """Personal data shown after an audited reveal: prints in clear, represents itself masked.

    Templates print ``str()``; debug output (Django's template debug log dumps the whole
    context with ``repr()``, error reports, tracebacks) sees the masked form only.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def __str__(self) -> str:
        return self._value

    def __html__(self) -> str:
        return str(escape(self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Revealed({mask_text(self._value)!r})"


class MaskPhoneNumbers(logging.Filter):
    """A logging filter that masks phone numbers in the message and the traceback of a record.

    The app's own loggers carry it (see :func:`get_logger`). Add it to the handlers that write
    request lines too (``django.server``, your WSGI server's access log), because providers
    such as Vonage put numbers in the query string of GET callbacks::

        LOGGING["filters"] = {"mask_numbers": {"()": "delivery.masking.MaskPhoneNumbers"}}
        LOGGING["handlers"]["console"]["filters"] = ["mask_numbers"]
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask_text(record.getMessage()), None
        if record.exc_info:
            # Formatted once, masked, and the exception itself dropped so that no handler (a
            # JSON formatter, an error tracker) formats the unmasked original.
            record.exc_text = record.exc_text or logging.Formatter().formatException(
                record.exc_info
            )
            record.exc_info = None
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with :class:`MaskPhoneNumbers` on it (once)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, MaskPhoneNumbers) for f in logger.filters):
        logger.addFilter(MaskPhoneNumbers())
    return logger
