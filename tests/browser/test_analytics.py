"""An agent opens "Delivery analytics" and sees the demo's degraded route stand out, in Chromium;
the alert command reports that drop once. ``UPDATE_SCREENSHOTS=1`` writes the README's
screenshot to ``docs/screenshots/``."""

import io
import os

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from delivery.models import Alert
from support_console.groups import AGENT
from tests.browser.test_console import SCREENSHOTS, user

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_degraded_route_stands_out_and_is_reported_once(page, live_server, login, tmp_path):
    out = io.StringIO()
    call_command("sms_delivery_seed", messages=900, seed=3, degraded="GB", stdout=out)
    call_command("sms_delivery_rollup", days=15, stdout=out)
    call_command("sms_delivery_alerts", stdout=out)
    call_command("sms_delivery_alerts", stdout=out)  # the next run: the same incident
    assert [(a.rule, a.key) for a in Alert.objects.all()] == [("rate_drop", "country:GB")]
    assert out.getvalue().count("ALERT [rate_drop]") == 1

    user("agent", AGENT)
    login(page, live_server, "agent", "pw-agent-123")
    page.goto(live_server.url + "/admin/")
    page.click("text=Delivery analytics")
    page.check("input[name=window][value='24h']")  # submits the form
    expect(page.locator("#open-alerts")).to_contain_text("delivery rate of country GB")
    gb = page.locator("#by-country tr", has_text="GB").first
    expect(gb.locator(".sms-rate-change--drop")).to_contain_text("▼")
    page.click("#by-country summary")
    expect(page.locator("#by-country details table")).to_be_visible()
    target = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / "delivery-analytics.png"), full_page=True)
    assert (target / "delivery-analytics.png").stat().st_size > 10_000
