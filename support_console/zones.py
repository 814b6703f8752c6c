"""Which time zone the recipient's local times are shown in, and how sure we are of it.

``phonenumbers`` knows the zones of a number's prefix: one for most numbers (``+1 415`` is
America/Los_Angeles), several for mobile ranges and toll-free numbers that are not tied to a place
(``+1 800``: 42 zones, ``+61 4``: all of Australia's, ``+44 7``: the UK's and the Crown
dependencies'). Where it names several, the default is the zone most of the country's people live
in (:data:`MAIN_ZONES`), shown as a guess the agent can change; never the alphabetically first.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from delivery.recipients import locate

#: The zone most of a country's population lives in, for countries with several zones (IANA
#: names; by population, from the countries' statistics offices as summarised by the IANA
#: zone.tab comments). Countries with one zone need no entry.
MAIN_ZONES = {
    "AR": "America/Argentina/Buenos_Aires",
    "AU": "Australia/Sydney",
    "BR": "America/Sao_Paulo",
    "CA": "America/Toronto",
    "CD": "Africa/Kinshasa",
    "CL": "America/Santiago",
    "CN": "Asia/Shanghai",
    "EC": "America/Guayaquil",
    "ES": "Europe/Madrid",
    "FM": "Pacific/Pohnpei",
    "GB": "Europe/London",
    "GL": "America/Nuuk",
    "ID": "Asia/Jakarta",
    "KI": "Pacific/Tarawa",
    "KZ": "Asia/Almaty",
    "MN": "Asia/Ulaanbaatar",
    "MX": "America/Mexico_City",
    "MY": "Asia/Kuala_Lumpur",
    "NZ": "Pacific/Auckland",
    "PF": "Pacific/Tahiti",
    "PG": "Pacific/Port_Moresby",
    "PT": "Europe/Lisbon",
    "RU": "Europe/Moscow",
    "UA": "Europe/Kyiv",
    "US": "America/New_York",
    "UZ": "Asia/Tashkent",
}

#: Zone names ``phonenumbers`` still uses that the tz database has since renamed (its
#: ``backward`` file): the page shows the current name.
RENAMED = {
    "Africa/Asmera": "Africa/Asmara",
    "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Godthab": "America/Nuuk",
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Dacca": "Asia/Dhaka",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Rangoon": "Asia/Yangon",
    "Asia/Saigon": "Asia/Ho_Chi_Minh",
    "Asia/Thimbu": "Asia/Thimphu",
    "Asia/Ulan_Bator": "Asia/Ulaanbaatar",
    "Atlantic/Faeroe": "Atlantic/Faroe",
    "Europe/Kiev": "Europe/Kyiv",
    "Pacific/Enderbury": "Pacific/Kanton",
    "Pacific/Ponape": "Pacific/Pohnpei",
    "Pacific/Truk": "Pacific/Chuuk",
}


def is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def canonical(name: str) -> str:
    """The tz database's current name for ``name`` (when this machine's database knows it)."""
    renamed = RENAMED.get(name)
    return renamed if renamed and is_zone(renamed) else name


@dataclass(frozen=True)
class Zone:
    """The zone local times are shown in."""

    name: str
    candidates: tuple[str, ...]  #: the zones the number's digits allow (canonical names)
    chosen: bool  #: set on the message or picked by the agent
    guessed: bool  #: the number allows several zones and this is the country's main one

    @property
    def ambiguous(self) -> bool:
        return self.guessed and not self.chosen


def recipient_zone(e164: str, override: str = "", requested: str = "") -> Zone | None:
    """The zone the agent picked (``requested``), else the message's ``override``, else the
    number's own zone, else its country's main zone (a guess). None when nothing is known."""
    location = locate(e164) if e164 else None
    candidates = tuple(dict.fromkeys(canonical(z) for z in location.time_zones)) if location else ()
    for chosen in (requested, override):
        if chosen and is_zone(chosen):
            name = canonical(chosen)
            return Zone(name, candidates or (name,), chosen=True, guessed=False)
    if len(candidates) == 1:
        return Zone(candidates[0], candidates, chosen=False, guessed=False)
    country = location.country if location else ""
    main = MAIN_ZONES.get(country)
    if main and is_zone(main):
        return Zone(main, candidates or (main,), chosen=False, guessed=True)
    if candidates:
        return Zone(candidates[0], candidates, chosen=False, guessed=True)
    return None
