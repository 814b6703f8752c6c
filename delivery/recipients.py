"""Phone numbers as personal data: normalize, hash with a key, encrypt at rest, locate.

A bare SHA-256 of a phone number is reversible by brute force (there are only ~10^10 numbers
per country), so the lookup hash is an HMAC with a secret key. The number itself is stored
encrypted (:mod:`delivery.crypto`) so that support can reveal it, audited.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import NamedTuple

import phonenumbers

from .conf import app_settings
from .crypto import encrypt
from .exceptions import ConfigurationError

#: What phonenumbers answers when it cannot tell a number's zone.
_UNKNOWN_ZONE = "Etc/Unknown"


def to_e164(number: str, default_region: str | None = None) -> str | None:
    """``number`` in E.164 (``+15558675310``), or ``None`` if it is not a plausible number.

    Accepts any common format (spaces, dots, dashes, brackets, ``00`` prefix, channel
    prefixes such as ``whatsapp:``). Without a leading ``+``, ``default_region`` is needed.
    """
    parsed = _read(number, default_region)
    return _e164(parsed) if parsed else None


#: Readings of one number before giving up on a form that reads as itself (digits in a number).
_MAX_READINGS = 17


def _read(number: str, default_region: str | None = None) -> phonenumbers.PhoneNumber | None:
    """``number`` parsed to the form its own E.164 spelling reads as, or None.

    phonenumbers drops one trunk prefix left after a country code per reading (``+49 (0) 030…``
    reads as ``+490301…``, which reads as ``+49301…``), so a number is read again from its
    E.164 form until that form reads as itself: what is stored is found again by itself. A
    number with no such form is None.
    """
    spelling = _bare(number)
    parsed = _parse(spelling, default_region)
    for _ in range(_MAX_READINGS):
        if parsed is None:
            return None
        e164 = _e164(parsed)
        if e164 == spelling:
            return parsed if phonenumbers.is_possible_number(parsed) else None
        parsed, spelling = _parse(e164), e164
    return None


def _parse(spelling: str, region: str | None = None) -> phonenumbers.PhoneNumber | None:
    """One reading; its length is judged on the last (``+44 (0) 020…`` is too long at first)."""
    if not spelling:
        return None
    try:
        return phonenumbers.parse(spelling, region)
    except phonenumbers.NumberParseException:
        return None


def _bare(number: str) -> str:
    """``number`` without a channel prefix, spaces around it or ``00`` for ``+``."""
    _, _, bare = number.rpartition(":")
    bare = bare.strip()
    return "+" + bare[2:] if bare.startswith("00") else bare


def _e164(parsed: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def recipient_hash(e164: str) -> str:
    """Keyed HMAC-SHA256 of an E.164 number: the only index on recipients."""
    key = app_settings.HASH_KEY
    if not key:
        raise ConfigurationError("SMS_DELIVERY['HASH_KEY'] is not set (see check E002).")
    return hmac.new(key.encode(), e164.encode(), hashlib.sha256).hexdigest()


def recipient_token(number: str) -> str:
    """A short keyed token of a number, for identifiers that must tell recipients apart without
    showing them (16 hex digits of :func:`recipient_hash`)."""
    return recipient_hash(to_e164(number) or number)[:16]


class Protected(NamedTuple):
    """A number read, as the tables keep it."""

    e164: str
    hash: str  #: keyed (:func:`recipient_hash`)
    encrypted: str
    country: str  #: ISO 3166-1 alpha-2, "" if unknown (:func:`country_of`)


def protect(number: str) -> Protected | None:
    """``number`` in any format: E.164, keyed hash, encrypted E.164 and the country of the
    E.164 form (as :func:`country_of` reads it); None if it is not a number.

    A number already written in E.164, as providers send them, is parsed once; another
    spelling is read again from its E.164 form (see :func:`_read`).
    """
    parsed = _read(number)
    if parsed is None:
        return None
    e164 = _e164(parsed)
    return Protected(e164, recipient_hash(e164), encrypt(e164), _country(parsed))


def identity_key(identity: str) -> tuple[str, str]:
    """``(channel, address)`` of one of our sender identities, comparable across the ways
    providers spell it: ``whatsapp:447700900000`` and ``whatsapp:+447700900000`` are one, and so
    are Plivo's ``14155550199`` and Twilio's ``+14155550199``."""
    channel, sep, address = identity.strip().rpartition(":")
    address = address.strip()
    e164 = to_e164(address) or (to_e164("+" + address) if address.isdigit() else None)
    return (channel.lower() if sep else "sms"), (e164 or address.lower())


@dataclass(frozen=True)
class Location:
    """Where a number is registered, as far as its digits tell."""

    country: str  #: ISO 3166-1 alpha-2, "" if unknown
    time_zones: tuple[str, ...]  #: IANA zones the number may be in; several for big countries


def country_of(e164: str) -> str:
    """ISO region of an E.164 number ("" if none): what every report's number needs, without
    the time-zone data (loaded only where zones are shown)."""
    parsed = _parsed(e164)
    return _country(parsed) if parsed else ""


def locate(e164: str) -> Location:
    """Country and candidate time zones of an E.164 number (``phonenumbers`` metadata)."""
    parsed = _parsed(e164)
    if parsed is None:
        return Location("", ())
    from phonenumbers import timezone as phone_timezones  # its data: only where zones are shown

    zones = tuple(z for z in phone_timezones.time_zones_for_number(parsed) if z != _UNKNOWN_ZONE)
    return Location(_country(parsed), zones)


def _parsed(e164: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return None


def _country(parsed: phonenumbers.PhoneNumber) -> str:
    # An unassigned number (such as the fictional 555-01xx range) has no region of its own;
    # its country code still names the main country (US for +1, GB for +44).
    country = phonenumbers.region_code_for_number(parsed) or (
        phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    )
    return "" if country == "ZZ" else country
