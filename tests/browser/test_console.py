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
        assert shown == [utc, local.strftime("%Y-%m-%d %H:%M:%S ") + local.tzname()]
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


def test_screenshots_of_the_list_and_the_message_page(page, live_server, login, message, tmp_path):
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
