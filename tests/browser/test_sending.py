"""What an agent sees of sends made through ``send_sms``, in Chromium: consent, the retry chain,
the suppression list (a lead adds a number and lifts an entry, both audited)."""

from datetime import UTC, datetime

import pytest
import responses
from django.test import Client
from playwright.sync_api import expect

from delivery.models import Suppression
from delivery.sending import Consent, send_sms
from support_console.groups import LEAD
from support_console.models import RevealLog
from tests.browser.test_console import user
from tests.fixtures import twilio
from tests.providers.test_twilio import post
from tests.test_sending import BASE, CREATE_URL, SENDER, TO, callback, created

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sends(sms_delivery_settings):
    sms_delivery_settings["WEBHOOK_BASE_URL"] = BASE
    sms_delivery_settings["PROVIDERS"]["twilio"] = {
        **sms_delivery_settings["PROVIDERS"]["twilio"],
        "DEFAULT_SENDER": SENDER,
    }
    with responses.RequestsMock() as api:
        api.post(CREATE_URL, json=created(), status=201)
        api.post(CREATE_URL, json=created(sid="SM" + "8" * 32), status=201)
        consent = Consent("checkout form", at=datetime(2026, 11, 30, 9, 15, tzinfo=UTC))
        first = send_sms(TO, "Your order 7 is confirmed", consent=consent)
        assert callback(Client(), "undelivered", ErrorCode="30003").status_code == 200
        second = send_sms(TO, "Your order 7 is confirmed", consent=consent, retry_of=first)
    stop = twilio.incoming("STOP", From=TO, To=SENDER)
    path = "/webhooks/twilio/inbound/"
    assert post(Client(), stop, url=BASE + path, path=path).status_code == 200
    return first, second


def test_a_lead_reads_consent_and_the_retry_chain_and_keeps_the_list(
    page, live_server, login, sends
):
    first, second = sends
    user("lead", LEAD)
    login(page, live_server, "lead", "pw-lead-123")
    page.goto(live_server.url + f"/admin/sms_delivery/message/{first.pk}/change/")
    expect(page.locator("#answer-consent")).to_contain_text("2026-11-30 09:15 UTC · checkout form")
    expect(page.locator("#answer-retry")).to_contain_text(f"as {second.public_id}, accepted")
    expect(page.locator("#sms-suppressed")).to_contain_text("Opt-out keyword (STOP)")
    assert TO not in page.content() and TO[1:] not in page.content()

    page.click("#sms-suppressed a")
    expect(page.locator("#result_list")).to_contain_text("STOP")
    entry = Suppression.objects.get()
    page.check(f"input[name=_selected_action][value='{entry.pk}']")
    page.select_option("select[name=action]", "lift")
    page.click("button[name=index]")
    expect(page.locator(".messagelist")).to_contain_text("1 suppression(s) lifted")

    page.goto(live_server.url + "/admin/sms_delivery/suppression/add/")
    page.fill("input[name=number]", "+44 7700 900123")
    page.fill("input[name=reason]", "asked on the phone, ticket 91")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    assert "7700 900123" not in page.content() and "447700900123" not in page.content()
    assert [r.kind for r in RevealLog.objects.order_by("pk")] == ["lift", "suppress"]
