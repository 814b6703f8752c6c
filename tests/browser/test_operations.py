"""A support lead reprocesses a review-queue entry after a mapping fix, in Chromium."""

import pytest
from django.test import Client
from playwright.sync_api import expect

from delivery.lifecycle import Status
from delivery.models import Message, RawWebhook
from providers.twilio import TwilioProvider
from support_console.groups import LEAD
from support_console.models import RevealLog
from tests.browser.test_console import user
from tests.fixtures import twilio
from tests.providers.test_twilio import post

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_lead_reprocesses_the_review_queue_after_a_mapping_fix(
    page, live_server, login, monkeypatch
):
    sid = "SM" + "7" * 32
    assert post(Client(), twilio.callback("partially_delivered", sid=sid)).status_code == 200
    message = Message.objects.get()
    assert (message.current_status, message.needs_review) == (Status.UNKNOWN, True)
    fixed = {**TwilioProvider.statuses, "partially_delivered": Status.DELIVERED}
    monkeypatch.setattr(TwilioProvider, "statuses", fixed)  # the release with the fix

    user("lead", LEAD)
    login(page, live_server, "lead", "pw-lead-123")
    page.goto(live_server.url + "/admin/sms_delivery/rawwebhook/")
    raw = RawWebhook.objects.get()
    page.check(f"input[name=_selected_action][value='{raw.pk}']")
    page.select_option("select[name=action]", "replay_selected")
    page.click("button[name=index]")
    outcome = page.locator("#replay-outcomes")
    expect(outcome).to_contain_text("read as unknown before, as delivered now")
    expect(outcome).to_contain_text(message.public_id)
    assert Message.objects.get().current_status == Status.UNKNOWN  # shown, not done yet

    page.fill("#replay-reason", "Mapping fix for partially_delivered, ticket 88")
    page.click("#replay-form input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("1 of 1 requests changed the records")
    message = Message.objects.get()
    assert (message.current_status, message.needs_review) == (Status.DELIVERED, False)
    assert RevealLog.objects.get().kind == RevealLog.Kind.REPLAY

    page.goto(live_server.url + f"/admin/sms_delivery/message/{message.pk}/change/")
    expect(page.locator(".sms-source")).to_have_text("Replay")
