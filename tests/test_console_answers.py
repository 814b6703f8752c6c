"""The message page answers support's seven questions, in local times that cannot mislead."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import phonenumbers
import pytest
from django.urls import reverse
from phonenumbers.tzdata import TIMEZONE_DATA

from delivery import erasure
from delivery.events import ConsentChange, InboundEvent
from delivery.exceptions import InvalidNumber
from delivery.ingest import ingest, register_outbound
from delivery.lifecycle import ErrorCategory, Status
from delivery.models import Message
from support_console.answers import answer
from support_console.templatetags.console_time import local_time
from support_console.zones import RENAMED, canonical, recipient_zone
from tests.factories import NormalizedEventFactory as Event

pytestmark = pytest.mark.django_db

SENDER = "+15017122661"

# -- time zones -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number, zone, guessed",
    [
        ("+14155550100", "America/Los_Angeles", False),  # the prefix names one zone
        ("+18005550100", "America/New_York", True),  # toll-free: 42 zones, was America/Adak
        ("+61412345678", "Australia/Sydney", True),  # a mobile: all of Australia, was Adelaide
        ("+447700900001", "Europe/London", True),  # a UK mobile, was Europe/Guernsey
        ("+919876543210", "Asia/Kolkata", False),  # phonenumbers says Asia/Calcutta
        ("+15558675310", "America/New_York", True),  # unassigned: the country's main zone
    ],
)
def test_the_default_zone_comes_from_the_prefix_else_the_country(number, zone, guessed):
    chosen = recipient_zone(number)
    assert (chosen.name, chosen.guessed, chosen.ambiguous) == (zone, guessed, guessed)
    assert zone in chosen.candidates or len(chosen.candidates) == 1


def test_a_zone_the_agent_or_the_message_picked_wins():
    assert recipient_zone("+18005550100", requested="America/Chicago").name == "America/Chicago"
    assert recipient_zone("+18005550100", override="America/Denver").name == "America/Denver"
    picked = recipient_zone("+18005550100", requested="Nowhere/Atlantis")
    assert picked.name == "America/New_York"  # not a zone: ignored
    assert recipient_zone("+919876543210", requested="Asia/Calcutta").name == "Asia/Kolkata"


def test_every_zone_phonenumbers_names_is_shown_by_its_current_name():
    zi = Path("/usr/share/zoneinfo/tzdata.zi")
    if not zi.exists():
        pytest.skip("this machine's tz database has no tzdata.zi to read renamings from")
    renamed_by_tzdb = {}
    for line in zi.read_text().splitlines():
        if line.startswith("L "):
            _, target, link = line.split()
            renamed_by_tzdb[link] = target
    zones = {z for value in TIMEZONE_DATA.values() for z in value}
    # Only renamings matter (Calcutta -> Kolkata), not links between equal zones (Bratislava).
    renames = {
        old
        for old, new in renamed_by_tzdb.items()
        if old in zones and old.split("/")[0] == new.split("/")[0] and old != canonical(old)
    }
    assert renames <= set(RENAMED)
    assert canonical("Asia/Calcutta") == "Asia/Kolkata"


def test_a_local_time_always_carries_its_offset_in_the_repeated_hour():
    """On 2026-11-01 Los Angeles goes back from PDT to PST: 01:30 happens twice."""
    first = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    second = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert local_time(first, "America/Los_Angeles") == "01:30:00 PDT (UTC−07:00)"
    assert local_time(second, "America/Los_Angeles") == "01:30:00 PST (UTC−08:00)"
    assert local_time(first, "Asia/Kolkata") == "14:00:00 IST (UTC+05:30)"
    assert local_time(first, "America/Sao_Paulo") == "05:30:00 UTC−03:00"  # numeric abbreviation


# -- the seven questions, for every outcome ------------------------------------------------------


def sent_and(status, *, code="", category="", message_id, product="login:1"):
    """A registered message that was sent, then reported ``status`` (an unknown report alone)."""
    events = [Event(status=Status.SENT, provider_message_id=message_id, recipient="+14155550100")]
    if status == Status.UNKNOWN:
        events = []
    if status:
        events.append(
            Event(
                status=status,
                raw_status=str(status) if status != Status.UNKNOWN else "partially_delivered",
                error_code=code,
                error_category=category,
                provider_message_id=message_id,
            )
        )
    register_outbound(
        provider="twilio",
        provider_message_id=message_id,
        to="+14155550100",
        sender_identity=SENDER,
        product_reference=product,
    )
    ingest(events)
    return Message.objects.get(provider_message_id=message_id)


OUTCOMES = {
    "delivered": dict(status=Status.DELIVERED),
    "failed": dict(status=Status.FAILED, code="30007", category=ErrorCategory.CARRIER_FILTERING),
    "undelivered": dict(
        status=Status.UNDELIVERED, code="30003", category=ErrorCategory.UNREACHABLE_HANDSET
    ),
    "expired": dict(status=Status.EXPIRED),
    "unknown": dict(status=Status.UNKNOWN),
}


@pytest.mark.parametrize("outcome", [*OUTCOMES, "opted out"])
def test_every_outcome_answers_all_seven_questions(outcome, agent_client):
    if outcome == "opted out":
        message = sent_and(
            Status.FAILED, code="21610", category=ErrorCategory.OPT_OUT, message_id="SMout"
        )
        ingest(
            [
                InboundEvent(
                    provider="twilio",
                    provider_message_id="SMstop",
                    sender="+14155550100",
                    our_identity=SENDER,
                    keyword="STOP",
                    consent=ConsentChange.OPT_OUT,
                )
            ]
        )
    else:
        message = sent_and(**OUTCOMES[outcome], message_id=f"SM{outcome}")
    events = list(message.events.order_by("received_at", "id"))
    answers = answer(message, events)
    assert answers.requested == message.registered_at  # 1. when requested
    assert answers.provider_said and answers.carrier_said  # 4., 5.
    assert answers.retry_note.startswith(("No:", "Yes:", "This message"))  # 6.
    assert answers.customer_step and answers.support_step  # 7., for the customer and support
    assert answers.customer_step != answers.support_step
    assert bool(answers.unknown) == (outcome == "unknown")
    page = agent_client.get(reverse("admin:sms_delivery_message_change", args=[message.pk]))
    html = page.content.decode()
    for element in (
        "answer-requested",  # 1
        "recipient-number",  # 2
        "answer-sender",  # 3
        "answer-provider",  # 4
        "answer-carrier",  # 5
        "answer-retry",  # 6
        "sms-customer-step",  # 7
        "sms-next-step",
    ):
        assert f'id="{element}"' in html, element
    if outcome == "opted out":
        assert "Reply START" in answers.customer_step and answers.consent is not None
    if outcome == "unknown":
        assert "partially_delivered" in answers.unknown and 'id="sms-unknown"' in html


def test_a_resend_is_linked_both_ways(agent_client):
    first = sent_and(Status.UNDELIVERED, code="30003", message_id="SM1", product="login:9")
    second = sent_and(Status.DELIVERED, message_id="SM2", product="login:9")
    assert answer(first, []).retry_note.startswith("Yes: retried ")
    assert answer(first, []).retries[0].message == second
    assert answer(second, []).retry_note.startswith("This message is itself a resend")


def test_a_retry_chain_from_send_sms_answers_did_we_retry(agent_client):
    """Did we retry? "retried 2 min later as msg_…", from retry_of links alone."""
    first = sent_and(Status.UNDELIVERED, code="30003", message_id="SMa")
    second = sent_and(Status.UNDELIVERED, code="30003", message_id="SMb")
    third = sent_and(Status.DELIVERED, message_id="SMc")
    Message.objects.filter(pk=second.pk).update(
        retry_of=first, created_at=first.created_at + timedelta(minutes=2)
    )
    Message.objects.filter(pk=third.pk).update(
        retry_of=second, created_at=first.created_at + timedelta(minutes=9)
    )
    first.refresh_from_db()
    note = answer(first, []).retry_note
    assert note.startswith("Yes: retried 2 min 0 s later as " + second.public_id)
    assert "2 more sends in all" in note
    third.refresh_from_db()
    assert (
        answer(third, []).retry_note == f"This message is itself a resend (of {second.public_id})."
    )
    assert [r.message for r in answer(third, []).retries] == [first, second]
    html = agent_client.get(
        reverse("admin:sms_delivery_message_change", args=[first.pk])
    ).content.decode()
    assert second.public_id in html and third.public_id in html


def test_a_message_known_only_from_callbacks_has_no_request_time(agent_client):
    ingest([Event(status=Status.SENT, provider_message_id="SMcb", recipient="+14155550100")])
    message = Message.objects.get()
    assert message.registered_at is None
    html = agent_client.get(
        reverse("admin:sms_delivery_message_change", args=[message.pk])
    ).content.decode()
    assert "Not recorded by our app" in html and "Requested by our app" not in html
    assert "requested →" not in html  # no latency from a request that never was


def test_local_times_on_the_page_carry_their_offset(agent_client):
    message = sent_and(Status.DELIVERED, message_id="SMtz")
    html = agent_client.get(
        reverse("admin:sms_delivery_message_change", args=[message.pk])
    ).content.decode()
    offset = "(UTC−08:00)" if datetime.now(UTC).month in (1, 2, 12) else "(UTC−0"
    assert offset in html


# -- numbers the app passes in ------------------------------------------------------------------


def test_register_outbound_reads_national_numbers_in_the_default_region(settings):
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "DEFAULT_REGION": "US"}
    message = register_outbound(provider="twilio", provider_message_id="SMn", to="(415) 555-0101")
    assert message.recipient == "+14155550101"


@pytest.mark.parametrize("erased_as", ["+49 30 1234567", "+490301234567", "+49 (0) 030 1234567"])
def test_a_trunk_prefix_written_twice_is_stored_as_the_number_and_found_by_it(erased_as):
    """phonenumbers keeps one of two trunk prefixes on a first reading (``+490301234567``),
    which reads as ``+49301234567``: stored so, the message would escape its erasure."""
    message = register_outbound(
        provider="twilio", provider_message_id="SMz", to="+49 (0) 030 1234567"
    )
    assert message.recipient == "+49301234567"
    assert Message.objects.for_recipient(erased_as).get() == message
    assert erasure.erase(erased_as, actor="dpo").touched["messages"] == 1


def test_register_outbound_refuses_what_is_not_a_number():
    with pytest.raises(InvalidNumber) as raised:
        register_outbound(provider="twilio", provider_message_id="SMx", to="(415) 555-0101")
    assert "DEFAULT_REGION" in str(raised.value) and "415" not in str(raised.value)
    assert not Message.objects.exists()
    assert phonenumbers  # the reading is phonenumbers', with its national formats


@pytest.fixture
def agent_client(client):
    from django.contrib.auth.models import Group, User

    from support_console.groups import AGENT

    user = User.objects.create_user("agent", password="pw-12345678", is_staff=True)
    user.groups.add(Group.objects.get(name=AGENT))
    client.force_login(user)
    return client
