"""Values fitted to their columns before they reach the database (delivery.storable)."""

from datetime import datetime, timedelta, timezone

import pytest

from delivery import storable
from delivery.exceptions import MalformedPayload
from delivery.lifecycle import Status
from tests.factories import NormalizedEventFactory as Event


def test_text_is_cut_with_a_marker_and_identities_keep_a_digest():
    assert storable.text("abcdef", 4, name="x") == "abc…"
    one = storable.text("SM" + "a" * 80 + "1", 64, identity=True, name="x")
    two = storable.text("SM" + "a" * 80 + "2", 64, identity=True, name="x")
    assert len(one) == len(two) == 64 and one != two and one.startswith("SM" + "a" * 40)
    assert one == storable.text("SM" + "a" * 80 + "1", 64, identity=True, name="x")
    assert storable.text("short", 64, identity=True, name="x") == "short"


def test_text_drops_nul_and_replaces_lone_surrogates():
    assert storable.text("a\x00b", name="x") == "ab"
    assert storable.text("a\ud800b", name="x").encode("utf-8") == b"a?b"


@pytest.mark.parametrize("value", [["a"], {"a": 1}, True, 1.5, None])
def test_text_refuses_what_is_not_text(value):
    with pytest.raises(MalformedPayload, match="Unreadable message id"):
        storable.text(value, name="message id")


def test_numbers_are_read_as_their_digits():
    assert storable.text(30003, name="x") == "30003"


@pytest.mark.parametrize("value, expected", [(1, 1), (0, 0), (32767, 32767), (32768, None)])
def test_counts_outside_the_column_are_dropped(value, expected):
    assert storable.count(value) == expected
    assert storable.count(-1) is None and storable.count(True) is None


def test_an_event_is_fitted_field_by_field():
    event = storable.event(
        Event(
            provider_message_id="SM\x001",
            error_code="3" * 40,
            error_detail="Invalid 'To' Phone Number: +14155550100",
            sender_identity="s" * 200,
            destination_country="USA",
            segments=70000,
            error_category="not-a-category",
        )
    )
    assert event.provider_message_id == "SM1"
    assert len(event.error_code) == 32
    assert event.error_detail == "Invalid 'To' Phone Number: +1 ••• ••• 0100"
    assert len(event.sender_identity) == 100
    assert (event.destination_country, event.segments, event.error_category) == ("", None, "")


@pytest.mark.parametrize(
    "fields",
    [
        {"provider_message_id": ""},
        {"provider_message_id": ["SM1"]},
        {"status": "delivered-ish"},
        {"provider_occurred_at": "2026-11-22"},
        {"provider_occurred_at": datetime(2026, 11, 22)},  # naive
        # before year 1 in UTC (PostgreSQL stores a BC time Python cannot read back), after 9999
        {"provider_occurred_at": datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))},
        {"provider_occurred_at": datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=2)))},
    ],
)
def test_an_unreadable_event_is_malformed(fields):
    with pytest.raises(MalformedPayload):
        storable.event(Event(**{"status": Status.SENT, **fields}))


def test_a_payload_that_is_not_json_data_is_malformed():
    with pytest.raises(MalformedPayload):
        storable.sealed_payload({"when": datetime(2026, 11, 22)})


def test_provider_words_are_stored_with_numbers_masked():
    assert storable.word("sent to +14155550100", name="status") == "sent to +1 ••• ••• 0100"
    assert storable.word("30003", name="code") == "30003"


def test_an_identifier_holding_a_number_becomes_a_keyed_token():
    token = storable.identifier("+14155550100", 64, name="id")
    assert token.startswith("number:") and "0100" not in token
    assert token == storable.identifier("+14155550100", 64, name="id")  # still dedupes
    assert token != storable.identifier("+14155550101", 64, name="id")
    uuid = "db3ce55a-7f1d-11e1-8ea7-123138012196"  # twelve digits: an id, not a number
    assert storable.identifier(uuid, 64, name="id") == uuid
