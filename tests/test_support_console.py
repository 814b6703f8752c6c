"""The support console without a browser: masking, search, permissions, audit, query budget."""

from dataclasses import replace
from urllib.parse import unquote

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from delivery.ingest import ingest, register_outbound
from delivery.lifecycle import ErrorCategory, Status
from delivery.masking import mask_data, mask_phone, mask_text
from delivery.models import Message, RawWebhook
from support_console.groups import AGENT, LEAD
from support_console.models import RevealLog
from tests.factories import NormalizedEventFactory as Event
from tests.privacy import numbers_in

pytestmark = pytest.mark.django_db

NUMBER = "+14155550100"


@pytest.mark.parametrize(
    "number, masked",
    [
        ("+14155550100", "+1 ••• ••• 0100"),
        ("+447400123456", "+44 ••• ••• 3456"),
        ("+61412345678", "+61 ••• •• 5678"),
        ("whatsapp:+4915123456789", "whatsapp:+49 ••• ••• • 6789"),
        ("", ""),
    ],
)
def test_mask_phone(number, masked):
    assert mask_phone(number) == masked


def test_mask_callable_override(settings):
    settings.SMS_DELIVERY = {
        **settings.SMS_DELIVERY,
        "MASK_CALLABLE": "tests.test_support_console.stars",
    }
    assert mask_phone("+14155550100") == "***"


def stars(number):
    return "***"


def test_raw_text_and_payload_masking_keeps_ids_and_dates():
    body = "From=%2B15017122661&To=%2B15558675310&MessageSid=SM1342fe1b2c904d1ab04f0fc7a58abca9&RawDlrDoneDate=2611221437"
    masked = mask_text(body)
    assert "15558675310" not in masked and "5310" in masked
    assert "SM1342fe1b2c904d1ab04f0fc7a58abca9" in masked and "2611221437" in masked
    assert mask_data({"To": "whatsapp:+15558675310", "n": [447700900123]})["To"].endswith("5310")
    assert "15558675310" not in str(mask_data({"To": "whatsapp:+15558675310"}))


@pytest.fixture
def message():
    ingest(
        [
            Event(status=Status.SENT, recipient=NUMBER, raw_payload={"To": NUMBER}),
            Event(
                status=Status.UNDELIVERED,
                error_code="30003",
                error_category=ErrorCategory.UNREACHABLE_HANDSET,
            ),
        ]
    )
    return register_outbound(
        provider="twilio",
        provider_message_id=Event().provider_message_id,
        sender_identity="+15017122661",
        template_key="otp_login",
        product_reference="login:42",
    )


def user_in(group, username):
    user = User.objects.create_user(username, password="pw-12345678", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def agent_client(client):
    client.force_login(user_in(AGENT, "agent"))
    return client


@pytest.fixture
def lead_client(client):
    client.force_login(user_in(LEAD, "lead"))
    return client


def page(client, message, **params):
    return client.get(reverse("admin:sms_delivery_message_change", args=[message.pk]), params)


def test_groups_exist_after_migrate():
    lead = {p.codename for p in Group.objects.get(name=LEAD).permissions.all()}
    agent = {p.codename for p in Group.objects.get(name=AGENT).permissions.all()}
    assert {"view_message", "view_messageevent"} <= agent
    assert not {"reveal_recipient", "view_raw_payload"} & agent
    assert {"reveal_recipient", "view_raw_payload"} <= lead


def search(client, term, **params):
    """Search the list as the form does (POST), and follow the redirect; (url, page)."""
    response = client.post(
        reverse("admin:sms_delivery_message_search"), {"q": term, **params}, follow=True
    )
    assert response.status_code == 200
    url, _ = response.redirect_chain[-1]
    return url, response.content.decode()


def results_of(page):
    start = page.index("<tbody>", page.index('<table id="result_list"'))
    return page[start : page.index("</tbody>", start)]


def test_list_masks_numbers_and_search_finds_them_by_any_format(agent_client, message):
    for term in ["+1 415 555 0100", "+1 (415) 555-0100", "+1.415.555.0100", "001 415 5550100"]:
        url, page = search(agent_client, term)
        assert message.public_id in results_of(page), term
        assert "+1 ••• ••• 0100" in results_of(page)
        assert not numbers_in(unquote(page), (NUMBER,)), "the number is on the page"
        assert not numbers_in(unquote(url), (NUMBER,)), f"the number is in the URL {url}"
        assert 'value="+1 ••• ••• 0100"' in page  # the search box shows it masked
    assert message.public_id in search(agent_client, message.provider_message_id)[1]
    assert message.public_id in search(agent_client, message.public_id)[1]
    assert message.public_id not in search(agent_client, "+1 415 555 0199")[1]


def test_a_number_typed_into_the_url_is_moved_out_of_it(agent_client, message):
    url = reverse("admin:sms_delivery_message_changelist")
    response = agent_client.get(url, {"q": "+1 415 555 0100", "final": "yes"})
    assert response.status_code == 302
    assert not numbers_in(unquote(response["Location"]), (NUMBER,))
    assert "final=yes" in response["Location"]
    assert message.public_id in agent_client.get(response["Location"]).content.decode()


def test_search_keeps_the_filters_and_needs_a_post(agent_client, message):
    url, page = search(agent_client, "+1 415 555 0100", current_status__exact="undelivered")
    assert "current_status__exact=undelivered" in url
    assert message.public_id in results_of(page)
    assert agent_client.get(reverse("admin:sms_delivery_message_search")).status_code == 405


def test_search_by_national_number_uses_default_region(agent_client, message, settings):
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "DEFAULT_REGION": "US"}
    for term in ["415 555 0100", "(415) 555-0100"]:
        assert message.public_id in results_of(search(agent_client, term)[1])
    help_text = agent_client.get(reverse("admin:sms_delivery_message_changelist")).content.decode()
    assert "read as a number in United States of America (US)" in help_text


def test_filters_render_and_apply(agent_client, message):
    url = reverse("admin:sms_delivery_message_changelist")
    for params in [
        {"current_status__exact": "undelivered"},
        {"final": "yes"},
        {"destination_country": "US"},
        {"provider": "twilio"},
        {"template_key": "otp_login"},
        {"error_category__exact": "unreachable_handset"},
        {"created_at__gte": "2000-01-01 00:00:00+00:00"},
    ]:
        response = agent_client.get(url, params)
        assert response.status_code == 200, params
        assert message.public_id in response.content.decode(), params
    assert message.public_id not in agent_client.get(url, {"final": "no"}).content.decode()


def test_list_runs_a_constant_number_of_queries_and_no_unbounded_count(agent_client):
    url = reverse("admin:sms_delivery_message_changelist")
    for i in range(3):
        ingest([Event(provider_message_id=f"SM{i:032x}", recipient=NUMBER)])
    agent_client.get(url)  # warm the filter-choice cache and the session
    with CaptureQueriesContext(connection) as few:
        agent_client.get(url)
    for i in range(3, 40):
        ingest([Event(provider_message_id=f"SM{i:032x}", recipient=NUMBER)])
    with CaptureQueriesContext(connection) as many:
        agent_client.get(url)
    assert len(many) == len(few)
    counts = [q["sql"] for q in many.captured_queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT" in sql.upper() for sql in counts)


def test_message_page_answers_support_questions(agent_client, message):
    body = page(agent_client, message).content.decode()
    assert "+1 ••• ••• 0100" in body and "4155550100" not in body
    assert message.provider_message_id in body and 'id="copy-provider-id"' in body
    assert "Unreachable destination handset" in body  # 30003's title
    assert body.count("Changed the status") == 2 and "Not applied" not in body
    assert "UTC" in body and "America/" in body  # UTC and the recipient's local time
    assert "otp_login" in body and "login:42" in body
    assert 'id="reveal-form"' not in body and "raw-payload-link" not in body


def test_recipient_zone_can_be_chosen(agent_client, message):
    body = page(agent_client, message, tz="America/Chicago").content.decode()
    assert 'value="America/Chicago" selected' in body
    assert "CST" in body or "CDT" in body


def test_agent_cannot_reveal_even_by_direct_post(agent_client, message):
    url = reverse("admin:sms_delivery_message_reveal", args=[message.pk])
    response = agent_client.post(url, {"reason": "ticket 1234"})
    assert response.status_code == 403
    assert "4155550100" not in response.content.decode()
    assert not RevealLog.objects.exists()


def test_lead_reveals_with_a_reason_and_it_is_audited(lead_client, message):
    assert 'id="reveal-form"' in page(lead_client, message).content.decode()
    url = reverse("admin:sms_delivery_message_reveal", args=[message.pk])
    refused = lead_client.post(url, {"reason": " "})
    assert refused.status_code == 400 and NUMBER not in refused.content.decode()
    response = lead_client.post(
        url, {"reason": "ticket 1234"}, HTTP_USER_AGENT="pytest", REMOTE_ADDR="10.0.0.7"
    )
    assert response.status_code == 200 and NUMBER in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    log = RevealLog.objects.get()
    assert (log.username, log.message_public_id, log.kind, log.reason) == (
        "lead",
        message.public_id,
        "recipient",
        "ticket 1234",
    )
    assert (log.ip_address, log.user_agent) == ("10.0.0.7", "pytest")
    # The next page view is masked again.
    assert NUMBER not in page(lead_client, message).content.decode()


def test_reveal_needs_post(lead_client, message):
    url = reverse("admin:sms_delivery_message_reveal", args=[message.pk])
    assert lead_client.get(url).status_code == 405
    assert not RevealLog.objects.exists()


def test_raw_payloads_need_permission_and_are_audited_and_masked(agent_client, message, client):
    url = reverse("admin:sms_delivery_message_raw", args=[message.pk])
    assert agent_client.get(url).status_code == 403
    agent_client.logout()
    client.force_login(user_in(LEAD, "lead2"))
    form = client.get(url)
    assert form.status_code == 200 and 'id="raw-form"' in form.content.decode()
    assert not RevealLog.objects.exists()  # nothing shown yet
    response = client.post(url, {"reason": "ticket 99"})
    body = response.content.decode()
    assert "undelivered" in body and "+1 ••• ••• 0100" in body and "4155550100" not in body
    assert RevealLog.objects.get().kind == "raw_payload"
    unmasked = client.post(url, {"reason": "ticket 99", "unmasked": "1"}).content.decode()
    assert "4155550100" in unmasked
    assert RevealLog.objects.filter(kind="raw_payload_unmasked").count() == 1


def test_audit_records_cannot_be_changed_or_deleted(admin_client, lead_client, message):
    lead_client.post(
        reverse("admin:sms_delivery_message_reveal", args=[message.pk]), {"reason": "t-1 check"}
    )
    log = RevealLog.objects.get()
    assert (
        admin_client.get(reverse("admin:sms_delivery_console_reveallog_changelist")).status_code
        == 200
    )
    change = reverse("admin:sms_delivery_console_reveallog_change", args=[log.pk])
    assert admin_client.post(change, {"reason": "edited"}).status_code == 403
    delete = reverse("admin:sms_delivery_console_reveallog_delete", args=[log.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert RevealLog.objects.get().reason == "t-1 check"
    with pytest.raises(ValueError):
        log.save()


def test_delivery_records_are_read_only_in_the_console(admin_client, message):
    change = reverse("admin:sms_delivery_message_change", args=[message.pk])
    assert admin_client.post(change, {"current_status": "delivered"}).status_code == 403
    assert Message.objects.get().current_status == Status.UNDELIVERED
    raw = RawWebhook.objects.create(provider="twilio", method="POST", path="/")
    raw_change = reverse("admin:sms_delivery_rawwebhook_change", args=[raw.pk])
    assert admin_client.post(raw_change, {"provider": "forged"}).status_code == 200  # a reason form
    assert RawWebhook.objects.get().provider == "twilio"
    for model in ("message", "rawwebhook"):
        url = reverse(
            f"admin:sms_delivery_{model}_delete",
            args=[message.pk if model == "message" else raw.pk],
        )
        assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert admin_client.get(reverse("admin:sms_delivery_message_add")).status_code == 403


def test_review_queue_of_unparsed_requests(agent_client, client):
    from delivery.ingest import RawRequest, store_unparsed

    raw = store_unparsed(
        RawRequest(
            provider="twilio",
            method="POST",
            path="/webhooks/twilio/status/",
            body=b"To=%2B14155550100&MessageStatus=sent",
            headers={"X-Twilio-Signature": "x"},
        ),
        "MessageSid is missing.",
    )
    changelist = reverse("admin:sms_delivery_rawwebhook_changelist")
    page_url = reverse("admin:sms_delivery_rawwebhook_change", args=[raw.pk])
    assert agent_client.get(changelist).status_code == 403
    assert agent_client.get(page_url).status_code == 403
    agent_client.logout()
    client.force_login(user_in(LEAD, "lead3"))
    listing = client.get(changelist, {"parse_failed": "yes"}).content.decode()
    assert "MessageSid is missing." in listing and "4155550100" not in listing
    gate = client.get(page_url).content.decode()
    assert 'id="raw-form"' in gate and "4155550100" not in gate
    shown = client.post(page_url, {"reason": "review queue triage"}).content.decode()
    assert "%2B•••••••0100" in shown and "4155550100" not in shown
    log = RevealLog.objects.get()
    assert (log.raw_webhook, log.message, log.kind) == (raw, None, "raw_payload")


def test_message_page_warns_when_the_recipient_opted_out(agent_client, message):
    from delivery.events import ConsentChange, InboundEvent

    ingest(
        [
            InboundEvent(
                provider="twilio",
                provider_message_id="SM" + "9" * 32,
                sender="+1 415 555 0100",
                our_identity="+15017122661",
                keyword="STOP",
                consent=ConsentChange.OPT_OUT,
            )
        ]
    )
    body = page(agent_client, message).content.decode()
    assert 'id="sms-consent"' in body and "Opted out of this sender." in body
    assert "<code>STOP</code>" in body and "Reply START" in body  # what to tell the customer


def test_an_opt_out_from_another_sender_does_not_block_this_one(agent_client, message):
    from delivery.events import ConsentChange, InboundEvent

    stop = InboundEvent(
        provider="plivo",
        provider_message_id="in-1",
        sender="+1 415 555 0100",
        our_identity="14155550199",  # another of our numbers, as Plivo writes it
        keyword="STOP",
        consent=ConsentChange.OPT_OUT,
    )
    ingest([stop])
    body = page(agent_client, message).content.decode()
    assert 'id="sms-consent"' not in body
    assert "Also opted out of 14155550199" in body and "does not block this sender" in body
    # The same number spelled Twilio's way is the same sender.
    ingest([replace(stop, provider_message_id="in-2", our_identity="+15017122661")])
    assert 'id="sms-consent"' in page(agent_client, message).content.decode()
