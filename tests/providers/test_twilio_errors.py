"""The Twilio error catalogue: coverage of the messaging codes, support categories, fallback."""

import pytest

from delivery.error_codes import ErrorInfo
from delivery.lifecycle import ErrorCategory
from providers.twilio_errors import TWILIO_ERRORS

pytestmark = pytest.mark.twilio

REQUIRED_CODES = [
    *(str(code) for code in range(30001, 30013)),
    "30022",
    "30023",
    "30024",
    *(str(code) for code in range(30032, 30039)),
    "30044",
    "30410",
    "30450",
    "30453",
    "63003",
    "63016",
    "63024",
    "63032",
    "21211",
    "21408",
    "21610",
    "21611",
    "21612",
    "21614",
]


def test_required_list_is_complete():
    assert len(REQUIRED_CODES) == len(set(REQUIRED_CODES)) == 36


@pytest.mark.parametrize("code", REQUIRED_CODES)
def test_required_code_is_described(code):
    assert code in TWILIO_ERRORS
    info = TWILIO_ERRORS.lookup(code)
    assert isinstance(info, ErrorInfo)
    assert info.code == code
    assert info.title.strip()
    assert info.note.strip()
    assert info.next_step.strip()
    assert isinstance(info.category, ErrorCategory)
    assert info.category in ErrorCategory.values


def test_every_entry_is_keyed_by_its_own_code():
    for code, info in TWILIO_ERRORS.entries.items():
        assert code == info.code
        assert code.isdigit()
        assert info.title.strip() and info.note.strip() and info.next_step.strip()
        assert isinstance(info.category, ErrorCategory)


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("30003", ErrorCategory.UNREACHABLE_HANDSET),
        ("30007", ErrorCategory.CARRIER_FILTERING),
        ("21610", ErrorCategory.OPT_OUT),
        ("30034", ErrorCategory.SENDER_NOT_REGISTERED),
        ("30002", ErrorCategory.ACCOUNT_BILLING),
        ("63016", ErrorCategory.CHANNEL_POLICY),
        ("21211", ErrorCategory.INVALID_NUMBER),
        ("30005", ErrorCategory.INVALID_NUMBER),
        ("30006", ErrorCategory.INVALID_NUMBER),
        ("30004", ErrorCategory.CARRIER_FILTERING),
        ("30008", ErrorCategory.UNKNOWN),
        ("30001", ErrorCategory.PROVIDER_OUTAGE),
        ("30010", ErrorCategory.ACCOUNT_BILLING),
        ("30032", ErrorCategory.SENDER_NOT_REGISTERED),
        ("30033", ErrorCategory.SENDER_NOT_REGISTERED),
        ("30035", ErrorCategory.SENDER_NOT_REGISTERED),
    ],
)
def test_category_is_what_support_expects(code, category):
    assert TWILIO_ERRORS.category(code) == category


def test_titles_are_twilios():
    assert TWILIO_ERRORS.lookup("30003").title == "Unreachable destination handset"
    assert TWILIO_ERRORS.lookup("30007").title == "Message filtered"
    assert TWILIO_ERRORS.lookup("30044").title == "Trial Message Length Exceeded"


def test_unconfirmed_code_says_so_instead_of_guessing():
    info = TWILIO_ERRORS.lookup("30037")
    assert "unconfirmed" in info.title.lower()
    assert info.category == ErrorCategory.UNKNOWN
    assert "https://www.twilio.com/docs/api/errors/30037" in info.next_step


def test_opt_out_says_do_not_resend():
    assert "Do not resend" in TWILIO_ERRORS.lookup("21610").next_step


def test_unlisted_code_falls_back_to_unknown_with_docs_link():
    assert "39999" not in TWILIO_ERRORS
    info = TWILIO_ERRORS.lookup("39999")
    assert info.code == "39999"
    assert info.category == ErrorCategory.UNKNOWN
    assert "https://www.twilio.com/docs/api/errors/39999" in info.next_step


def test_no_code_means_no_entry():
    assert TWILIO_ERRORS.lookup("") is None
    assert TWILIO_ERRORS.category("") == ""
