"""Phone numbers: normalization, keyed hashing, encryption with rotation, location."""

import hypothesis
import phonenumbers
import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from delivery import crypto, recipients


@pytest.mark.parametrize(
    "raw, region, expected",
    [
        ("+1 (415) 555-0100", None, "+14155550100"),
        ("415.555.0100", "US", "+14155550100"),
        ("0044 7700 900123", None, "+447700900123"),
        ("07700 900123", "GB", "+447700900123"),
        ("whatsapp:+4915123456789", None, "+4915123456789"),
        ("not a number", "US", None),
        ("", "US", None),
        ("12", "US", None),
        # A trunk prefix written twice: phonenumbers keeps one on the first reading.
        ("+49 (0) 030 1234567", None, "+49301234567"),
        ("+490301234567", None, "+49301234567"),
        ("+61(0)000043922", None, "+6143922"),
        ("+44 (0) 020 7946 0018", None, "+442079460018"),  # too long until the last reading
        ("+33 (0) 01 23 45 67 89", None, "+33123456789"),
        ("+39 06 1234 5678", None, "+390612345678"),  # Italy's leading zero is the number's
    ],
)
def test_to_e164(raw, region, expected):
    assert recipients.to_e164(raw, region) == expected


_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


@hypothesis.settings(max_examples=300)
@given(
    st.one_of(
        # A region's example numbers, as they may be written: international, with 00, with
        # a channel prefix, with an extension.
        st.tuples(
            st.sampled_from(_REGIONS),
            st.sampled_from(["+{}", "00{}", "whatsapp:+{}", "+{} ext. 12", " +{} "]),
        ).map(
            lambda pair: pair[1].format(
                phonenumbers.format_number(
                    phonenumbers.example_number(pair[0]) or phonenumbers.example_number("US"),
                    phonenumbers.PhoneNumberFormat.E164,
                ).lstrip("+")
            )
        ),
        st.text(alphabet="+0123456789 -().:ext", max_size=20),
        # A trunk prefix after the country code: dropped once per reading (+44 0016… is GB
        # read once, IM read again from its E.164 form).
        st.sampled_from(["+4400162475678", "+6100891621234", "+3580018123456"]),
        # Country code, then trunk prefixes and zeros: read until the E.164 form is stable.
        st.tuples(
            st.sampled_from(_REGIONS).map(phonenumbers.country_code_for_region),
            st.sampled_from(["", "0", "(0)", "(0)0", "00", "8", "(8)"]),
            st.text(alphabet="0123456789", min_size=3, max_size=14),
        ).map(lambda parts: "+{}{}{}".format(*parts)),
    )
)
def test_a_number_is_read_once_to_what_reading_it_twice_gives(number):
    """What is stored reads as itself (an erasure by the stored number finds it), and
    ``protect`` gives what :func:`to_e164`, then :func:`country_of` on the result, give."""
    protected = recipients.protect(number)
    e164 = recipients.to_e164(number)
    assert (protected.e164 if protected else None) == e164
    if protected:
        assert recipients.to_e164(e164) == e164
        assert protected.country == recipients.country_of(e164)
        assert protected.hash == recipients.recipient_hash(e164)
        assert crypto.decrypt(protected.encrypted) == e164


def test_hash_is_keyed(settings):
    first = recipients.recipient_hash("+14155550100")
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "HASH_KEY": "another-key"}
    assert recipients.recipient_hash("+14155550100") != first
    assert len(first) == 64


def test_encryption_rotation(settings):
    token = crypto.encrypt("+14155550100")
    assert "4155550100" not in token
    settings.SMS_DELIVERY = {
        **settings.SMS_DELIVERY,
        "ENCRYPTION_KEYS": ["new-key", "test-encryption-key"],
    }
    assert crypto.decrypt(token) == "+14155550100"  # old key still decrypts
    assert crypto.decrypt(crypto.encrypt("+1")) == "+1"
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "ENCRYPTION_KEYS": ["new-key"]}
    assert crypto.decrypt(token) == ""  # rotated out: unreadable, not an exception


def test_locate_gives_country_and_zones():
    assert recipients.locate("+4915123456789") == recipients.Location("DE", ("Europe/Berlin",))
    us = recipients.locate("+14155550100")
    assert us.country == "US"
    australia = recipients.locate("+61412345678")
    assert australia.country == "AU" and len(australia.time_zones) > 1  # several zones


def test_the_sqlite_check_is_quiet_under_debug(settings):
    from delivery.checks import check_database

    settings.DEBUG = True
    assert check_database() == []
    settings.DEBUG = False
    assert bool(check_database()) == (connection.vendor != "postgresql")


def test_a_number_written_in_e164_is_parsed_once(monkeypatch):
    parsed = []
    parse = phonenumbers.parse
    monkeypatch.setattr(phonenumbers, "parse", lambda *a: parsed.append(a) or parse(*a))
    assert recipients.protect("+14155550100").country == "US"
    assert len(parsed) == 1
    assert recipients.protect("whatsapp:+44 7700 900123").country == "GB"
    assert len(parsed) == 3  # another spelling: read again from its E.164 form


def _trunk_prefix_twice(region: str, kind: phonenumbers.PhoneNumberType) -> tuple[str, str] | None:
    """``region``'s example number of ``kind`` written with its trunk prefix twice, and its
    E.164 form; None where the region has no trunk prefix (or no example)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None or not metadata.national_prefix:
        return None
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    if not national.lstrip("(").startswith(metadata.national_prefix):
        return None
    spelling = f"+{example.country_code} ({metadata.national_prefix}) {national}"
    return spelling, phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


#: Regions whose doubled trunk prefix phonenumbers drops too (not, e.g., Japan's or Turkey's,
#: whose national numbers can start with a zero of their own).
_READ_AS_MEANT = {"AT", "AU", "BE", "BR", "DE", "FR", "GB", "IN", "NL", "NZ", "SE", "ZA"}


def test_a_trunk_prefix_written_twice_reads_as_itself_once_stored():
    """In every region, what is stored reads as itself; where phonenumbers drops the second
    trunk prefix too, it is the number meant."""
    unstable, misread = [], []
    for region in _REGIONS:
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            written = _trunk_prefix_twice(region, kind)
            if written is None:
                continue
            e164 = recipients.to_e164(written[0])
            if e164 is not None and recipients.to_e164(e164) != e164:
                unstable.append(written[0])
            if region in _READ_AS_MEANT and e164 != written[1]:
                misread.append(written[0])
    assert (unstable, misread) == ([], [])
