"""The support console in a real browser, as an agent, a lead and an admin use it.

Set ``UPDATE_SCREENSHOTS=1`` to refresh ``docs/screenshots/`` (shown in the README) from this run.
"""

import io
import os
import re
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from playwright.sync_api import expect

from delivery.ingest import ingest, register_outbound
from delivery.lifecycle import ErrorCategory, Status
from delivery.models import Message, MessageEvent
from support_console.groups import AGENT, LEAD
from support_console.models import RevealLog
from support_console.templatetags.console_time import offset
from tests.factories import NormalizedEventFactory as Event
from tests.privacy import numbers_in

pytestmark = pytest.mark.django_db(transaction=True)

NUMBER = "+14155550100"
MASKED = "+1 ••• ••• 0100"
SID = "SM7a1d2c3b4e5f60718293a4b5c6d7e8f9"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def message():
    register_outbound(
        provider="twilio",
        provider_message_id=SID,
        to=NUMBER,
        sender_identity="+15017122661",
        template_key="otp_login",
        product_reference="login:8812",
    )
    ingest(
        [
            Event(provider_message_id=SID, status=Status.SENT),
            Event(
                provider_message_id=SID,
                status=Status.UNDELIVERED,
                error_code="30003",
                error_category=ErrorCategory.UNREACHABLE_HANDSET,
            ),
        ]
    )
    ingest([Event(provider_message_id=SID, status=Status.SENT)])  # a duplicate
    return Message.objects.get(provider_message_id=SID)


def user(username, group=None, **extra):
    account = User.objects.create_user(
        username, password=f"pw-{username}-123", is_staff=True, **extra
    )
    if group:
        account.groups.add(Group.objects.get(name=group))
    return account


def open_message(page, live_server, login, username, message, search=NUMBER):
    login(page, live_server, username, f"pw-{username}-123")
    page.goto(live_server.url + "/admin/sms_delivery/message/")
    page.fill("#searchbar", search)
    page.press("#searchbar", "Enter")
    row = page.locator("#result_list tbody tr", has_text=message.public_id)
    expect(row).to_have_count(1)
    # The form posts: the number is in neither the URL (nor so the history) nor the search box.
    assert not numbers_in(unquote(page.url), (NUMBER,)), page.url
    expect(page.locator("#searchbar")).to_have_value(MASKED)
    expect(row.locator("td.field-masked_recipient")).to_have_text(MASKED)
    row.locator(f"a:text('{message.public_id}')").click()
    expect(page.locator("#sms-summary")).to_be_visible()


def test_agent_finds_by_number_reads_timeline_and_copies_the_id(page, live_server, login, message):
    user("agent", AGENT)
    open_message(page, live_server, login, "agent", message, search="+1 (415) 555-0100")
    assert "4155550100" not in page.content()
    expect(page.locator("#recipient-number")).to_have_text(MASKED)
    expect(page.locator("#reveal-form")).to_have_count(0)
    expect(page.locator("#raw-payload-link")).to_have_count(0)
    expect(page.locator("#sms-error")).to_contain_text("30003")
    expect(page.locator("#sms-next-step")).to_contain_text("phone")

    # Timeline: UTC and the recipient's local time (America/Los_Angeles for +1 415).
    events = list(MessageEvent.objects.timeline(message))
    rows = page.locator("tr.sms-event:not(.sms-event--request)")
    expect(rows).to_have_count(len(events))
    for row, event in zip(rows.all(), events, strict=True):
        utc = event.received_at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S")
        local = event.received_at.astimezone(ZoneInfo("America/Los_Angeles"))
        shown = [
            " ".join(row.locator(f"td.{cell}").inner_text().split()) for cell in ("utc", "local")
        ]
        when = local.strftime("%Y-%m-%d %H:%M:%S ") + local.tzname()
        assert shown == [utc, f"{when} ({offset(local)})"]
    expect(rows.nth(0)).to_contain_text("Duplicate: received 2×")
    expect(rows.nth(1)).to_contain_text("Unreachable destination handset")

    # The agent's own zone (the browser's: Europe/Berlin) on request.
    agent_cells = page.locator("td.sms-agent-time[data-utc]")
    expect(agent_cells.first).to_be_hidden()
    page.check("#show-agent-time")
    expect(agent_cells.first).to_be_visible()
    expect(agent_cells.nth(1)).to_contain_text(re.compile(r"GMT\+1|CET|GMT\+2|CEST"))

    page.click("#copy-provider-id")
    expect(page.locator(".sms-copied")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == SID


def test_lead_reveals_with_a_reason_and_the_admin_sees_the_audit(page, live_server, login, message):
    user("lead", LEAD)
    user("boss", is_superuser=True)
    open_message(page, live_server, login, "lead", message)
    page.fill("#reveal-form input[name=reason]", "Ticket 4711: customer asks which number")
    page.click("#reveal-form button")
    expect(page.locator("#recipient-number")).to_have_text(NUMBER)
    page.goto(live_server.url + f"/admin/sms_delivery/message/{message.pk}/change/")  # next view
    expect(page.locator("#recipient-number")).to_have_text(MASKED)
    assert RevealLog.objects.count() == 1

    page.context.clear_cookies()
    login(page, live_server, "boss", "pw-boss-123")
    page.goto(live_server.url + "/admin/sms_delivery_console/reveallog/")
    row = page.locator("#result_list tbody tr").first
    expect(row).to_contain_text("lead")
    expect(row).to_contain_text(message.public_id)
    expect(row).to_contain_text("Ticket 4711")
    expect(page.locator(".object-tools .addlink")).to_have_count(0)
    expect(page.locator("select[name=action]")).to_have_count(0)


def test_screenshots_of_the_list_and_the_message_page(
    page, live_server, login, message, tmp_path, settings
):
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "DEFAULT_REGION": "US"}  # as in the demo
    call_command("sms_delivery_seed", messages=60, seed=7, stdout=io.StringIO())
    user("agent", AGENT)
    target = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    login(page, live_server, "agent", "pw-agent-123")
    page.goto(live_server.url + "/admin/sms_delivery/message/")
    expect(page.locator("#result_list tbody tr")).to_have_count(50)  # one page, no COUNT(*) needed
    page.screenshot(path=str(target / "message-list.png"))
    page.goto(live_server.url + f"/admin/sms_delivery/message/{message.pk}/change/")
    page.screenshot(path=str(target / "message-page.png"), full_page=True)
    assert (target / "message-page.png").stat().st_size > 10_000


OUTCOMES = {
    "delivered": (Status.DELIVERED, "", ""),
    "failed": (Status.FAILED, "30007", ErrorCategory.CARRIER_FILTERING),
    "undelivered": (Status.UNDELIVERED, "30003", ErrorCategory.UNREACHABLE_HANDSET),
    "expired": (Status.EXPIRED, "", ""),
    "unknown": (Status.UNKNOWN, "", ""),
    "opted out": (Status.FAILED, "21610", ErrorCategory.OPT_OUT),
}


def outcome_message(name, index):
    from delivery.events import ConsentChange, InboundEvent

    status, code, category = OUTCOMES[name]
    sid = f"SM{index:032x}"
    register_outbound(
        provider="twilio",
        provider_message_id=sid,
        to=f"+1415555{index:04d}",
        sender_identity="+15017122661",
        product_reference=f"login:{index}",
    )
    events = (
        [] if status == Status.UNKNOWN else [Event(status=Status.SENT, provider_message_id=sid)]
    )
    raw = "partially_delivered" if status == Status.UNKNOWN else str(status)
    events.append(
        Event(
            status=status,
            raw_status=raw,
            error_code=code,
            error_category=category,
            provider_message_id=sid,
        )
    )
    ingest(events)
    if name == "opted out":
        stop = InboundEvent(
            provider="twilio",
            provider_message_id=f"SMstop{index}",
            sender=f"+1415555{index:04d}",
            our_identity="+15017122661",
            keyword="STOP",
            consent=ConsentChange.OPT_OUT,
        )
        ingest([stop])
    return Message.objects.get(provider_message_id=sid)


@pytest.mark.parametrize("name", list(OUTCOMES))
def test_an_agent_gets_the_seven_answers_for_every_outcome(page, live_server, login, name):
    user("agent", AGENT)
    message = outcome_message(name, list(OUTCOMES).index(name) + 1)
    login(page, live_server, "agent", "pw-agent-123")
    page.goto(live_server.url + f"/admin/sms_delivery/message/{message.pk}/change/")
    answers = {
        "when requested": "#answer-requested",
        "which number": "#recipient-number",
        "which sender": "#answer-sender",
        "what the provider said": "#answer-provider",
        "what the carrier said": "#answer-carrier",
        "did we retry": "#answer-retry",
        "what the customer should do": "#sms-customer-step",
    }
    for question, selector in answers.items():
        text = page.locator(selector).inner_text().strip()
        assert len(text) > 5 and text != "—", (name, question, text)
    expect(page.locator("#recipient-number")).to_have_text(re.compile(r"\+1 ••• ••• \d{4}"))
    expect(page.locator("#answer-requested")).to_contain_text("UTC")
    expect(page.locator("#answer-requested")).to_contain_text(re.compile(r"\(UTC[−+]\d\d:\d\d\)"))
    if name == "unknown":
        expect(page.locator("#sms-unknown")).to_contain_text("partially_delivered")
    if name == "opted out":
        expect(page.locator("#sms-consent")).to_contain_text("Opted out of this sender")
        expect(page.locator("#sms-customer-step")).to_contain_text("Reply START")


def test_the_list_fits_a_laptop_screen(page, live_server, login, message):
    # The widest id there can be (public ids are random; "w" is the widest letter they use).
    # and the longest reason a failure can show under its badge.
    Message.objects.filter(pk=message.pk).update(
        public_id="msg_" + "w" * 20, error_category=ErrorCategory.CHANNEL_POLICY
    )
    user("agent", AGENT)
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, live_server, "agent", "pw-agent-123")
    page.goto(live_server.url + "/admin/sms_delivery/message/")
    table = page.locator("#result_list")
    expect(table).to_be_visible()
    overflow = page.evaluate(
        "() => { const t = document.querySelector('#result_list');"
        " const box = t.closest('.results') || t.parentElement;"
        " return t.scrollWidth - box.clientWidth; }"
    )
    assert overflow <= 0, f"the list is {overflow}px wider than the screen"
