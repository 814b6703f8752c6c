"""The people's phone numbers in the test data, and a search for them in every common format.

Used by the log capture (conftest), the console crawl and the fuzz: a number found in clear
anywhere it should not be fails the test. Our own sender numbers are not listed: they are not
personal data and the console shows them.
"""

import re
from functools import cache
from urllib.parse import quote, quote_plus

import phonenumbers

#: Recipients and people who text us, in the fixtures of every provider and the console tests.
PEOPLE = (
    "+15558675310",  # Twilio recipient
    "+14155550100",  # console tests' recipient; Plivo inbound sender
    "+14155550123",  # Plivo recipient
    "+447700900001",  # Vonage recipient / inbound sender
    "+18665550001",  # Telnyx recipient / inbound sender
    "+13125550101",  # Telnyx group MMS recipients
    "+13125550102",
    "+13125550103",
    "+4532123456",  # a Danish mobile: ten digits in all, as Vonage's msisdn writes it
)

_FORMATS = (
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
)


@cache
def spellings(number: str) -> frozenset[str]:
    """``number`` as people and providers write it: E.164, international, national, digits only
    (with and without the country code) and URL-encoded."""
    parsed = phonenumbers.parse(number)
    written = {phonenumbers.format_number(parsed, f) for f in _FORMATS}
    digits = number.lstrip("+")
    written |= {digits, phonenumbers.national_significant_number(parsed)}
    written |= {encode(w) for w in list(written) for encode in (quote, quote_plus)}
    return frozenset(w for w in written if sum(c.isdigit() for c in w) >= 7)


@cache
def _pattern(numbers: tuple[str, ...]) -> re.Pattern:
    words = sorted({w for n in numbers for w in spellings(n)}, key=len, reverse=True)
    # Not inside a longer run of digits (a digest or an id that happens to contain them).
    return re.compile(r"(?<!\d)(?:" + "|".join(map(re.escape, words)) + r")(?!\d)")


def numbers_in(text: str, numbers: tuple[str, ...] = PEOPLE) -> list[str]:
    """Every spelling of ``numbers`` found in ``text``."""
    return _pattern(tuple(numbers)).findall(text)


#: Columns that hold our own sender identities (numbers, short codes, channel addresses): not
#: personal data, shown in the console and filtered on.
OUR_IDENTITIES = {
    ("sms_delivery_message", "sender_identity"),
    ("sms_delivery_inboundmessage", "our_identity"),
}


def stored_text(exclude=OUR_IDENTITIES) -> str:
    """Every value of every column of every table (but ``exclude``), as one text to search."""
    from django.db import connection

    values = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            columns = [
                c.name
                for c in connection.introspection.get_table_description(cursor, table)
                if (table, c.name) not in exclude
            ]
            quoted = ", ".join(map(connection.ops.quote_name, columns))
            cursor.execute(f"SELECT {quoted} FROM {connection.ops.quote_name(table)}")  # noqa: S608
            values += [repr(row) for row in cursor.fetchall()]
    return "\n".join(values)


def decrypted_text() -> str:
    """:func:`stored_text` with every encrypted value opened: all that a holder of the keys
    could read in the database."""
    from delivery import crypto

    text = stored_text(exclude=OUR_IDENTITIES)
    tokens = re.findall(r"gAAAAA[A-Za-z0-9_\-=]+", text)
    opened = (crypto.decrypt_bytes(token) for token in tokens)
    return text + "\n" + "\n".join(data.decode("utf-8", "replace") for data in opened if data)
