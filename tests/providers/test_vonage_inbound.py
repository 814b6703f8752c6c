"""Vonage inbound messages: opt-out keywords of the SMS API and the Messages API.

Verified exactly as Vonage's delivery reports: SMS API messages signed by vonage-http-client's
``Auth.sign_params``, Messages API ones with the documented bearer JWT (see test_vonage).
"""

import json
import time
from urllib.parse import urlencode

import pytest

from delivery.events import ConsentChange
from delivery.models import InboundMessage, Message, MessageEvent, RawWebhook
from delivery.recipients import recipient_hash
from delivery.signals import consent_changed
from tests.fixtures import vonage as payloads
from tests.providers.test_vonage import JSON, OPTIONS, SECRET, sign_dlr, token_for

pytestmark = [pytest.mark.vonage, pytest.mark.django_db]

PATH = "/webhooks/vonage/inbound/"
FORM = "application/x-www-form-urlencoded"
PERSON_E164 = "+" + payloads.PERSON


@pytest.fixture(autouse=True)
def vonage_registered(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["vonage"] = dict(OPTIONS)
    return sms_delivery_settings["PROVIDERS"]["vonage"]


@pytest.fixture
def consent_signals():
    seen = []

    def receiver(sender, inbound, opted_out, **kwargs):
        seen.append((inbound.keyword, opted_out))

    consent_changed.connect(receiver)
    yield seen
    consent_changed.disconnect(receiver)


def send_sms(client, params, how="get"):
    """An SMS API inbound message as the dashboard's webhook method sends it."""
    if how == "get":
        return client.get(PATH, params)
    if how == "form":
        return client.post(PATH, urlencode(params), content_type=FORM)
    return client.post(PATH, json.dumps(params), content_type=JSON)


def post_sms(client, params, how="get", **signing):
    return send_sms(client, sign_dlr(params, **signing), how)


def post_message(client, payload, secret=SECRET, body=None, token=None):
    body = json.dumps(payload, separators=(",", ":")).encode() if body is None else body
    token = token or token_for(body, secret)
    return client.post(PATH, body, content_type=JSON, headers={"Authorization": f"Bearer {token}"})


def assert_nothing_written():
    assert not RawWebhook.objects.exists()
    assert not InboundMessage.objects.exists()


# -- SMS API ------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_sms_stop_is_recorded_once_and_signalled_once(
    client, django_capture_on_commit_callbacks, consent_signals, how
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post_sms(client, payloads.inbound_sms("STOP"), how)
        again = post_sms(client, payloads.inbound_sms("STOP"), how)  # retried, signed afresh
    assert first.status_code == again.status_code == 200, first.content
    assert first.json()["new"] == 1 and again.json()["new"] == 0
    inbound = InboundMessage.objects.get()
    assert (inbound.provider, inbound.provider_message_id) == ("vonage", payloads.INBOUND_ID)
    assert (inbound.keyword, inbound.consent) == ("STOP", ConsentChange.OPT_OUT)
    assert inbound.our_identity == payloads.OUR_NUMBER  # as DLRs give our sender id
    assert inbound.sender_hash == recipient_hash(PERSON_E164)
    assert payloads.PERSON not in inbound.sender_encrypted
    assert consent_signals == [("STOP", True)]
    assert RawWebhook.objects.count() == 2
    assert RawWebhook.objects.first().account == payloads.API_KEY
    assert not Message.objects.exists() and not MessageEvent.objects.exists()


@pytest.mark.parametrize(
    "text, keyword, consent",
    [
        ("STOP", "STOP", ConsentChange.OPT_OUT),
        ("stop.", "STOP", ConsentChange.OPT_OUT),
        ("Unsubscribe", "UNSUBSCRIBE", ConsentChange.OPT_OUT),
        ("start", "START", ConsentChange.OPT_IN),
        ("HELP", "HELP", ConsentChange.HELP),
        ("see you at 5", "", ""),
        # Vonage's own keyword field says STOP (the first word): the whole text decides.
        ("Stop texting me", "", ""),
    ],
)
def test_sms_keywords(client, text, keyword, consent):
    assert post_sms(client, payloads.inbound_sms(text), "form").status_code == 200
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent) == (keyword, consent)


def test_sms_latest_keyword_decides_consent(client, consent_signals):
    post_sms(client, payloads.inbound_sms("STOP", message_id="0A00000000000001"))
    post_sms(client, payloads.inbound_sms("START", message_id="0A00000000000002"))
    post_sms(client, payloads.inbound_sms("thanks!", message_id="0A00000000000003"))
    latest = InboundMessage.objects.consent_for(recipient_hash(PERSON_E164), payloads.OUR_NUMBER)
    assert latest.consent == ConsentChange.OPT_IN
    assert InboundMessage.objects.count() == 3


def test_sms_text_with_signature_separators_verifies(client):
    """``&`` and ``=`` are replaced by ``_`` in the signed string only (signing-messages page)."""
    response = post_sms(client, payloads.inbound_sms("a=b & c"), "form")
    assert response.status_code == 200
    assert "text=a%3Db+%26+c" in RawWebhook.objects.get().sealed.text  # kept as received
    assert InboundMessage.objects.get().consent == ""


def test_sms_part_of_a_long_message_is_never_a_keyword(client):
    part = payloads.inbound_sms(
        "STOP",
        **{"concat": "true", "concat-ref": "108", "concat-total": "2", "concat-part": "2"},
    )
    assert post_sms(client, part).status_code == 200
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent) == ("", "")


def test_sms_binary_message_is_stored_without_keyword(client):
    fields = {k: v for k, v in payloads.inbound_sms("").items() if k not in ("text", "keyword")}
    binary = {**fields, "type": "binary", "data": "53544f50", "udh": "050003CC0201"}  # "STOP"
    assert post_sms(client, binary, "form").status_code == 200
    assert InboundMessage.objects.get().consent == ""


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_sms_forged_is_403_and_writes_nothing(client, how):
    response = post_sms(client, payloads.inbound_sms("START"), how, secret="forged-secret-0000")
    assert response.status_code == 403
    assert_nothing_written()


def test_sms_tampered_text_is_403(client):
    signed = sign_dlr(payloads.inbound_sms("see you at 5"))
    assert send_sms(client, {**signed, "text": "START"}).status_code == 403
    assert_nothing_written()


def test_sms_stale_signature_is_403(client):
    response = post_sms(
        client, payloads.inbound_sms("STOP"), timestamp=int(time.time()) - 5 * 24 * 3600
    )
    assert response.status_code == 403
    assert "stale" in response.json()["detail"]
    assert_nothing_written()


def test_unsigned_sms_is_refused_even_when_unsigned_receipts_are_allowed(client, vonage_registered):
    vonage_registered["UNSIGNED_DLRS_ALLOWED"] = True
    response = send_sms(client, payloads.inbound_sms("START"))
    assert response.status_code == 403
    assert "Inbound message has no signature" in response.json()["detail"]
    assert_nothing_written()


def test_unsigned_sms_only_with_its_own_switch(client, vonage_registered):
    vonage_registered["UNSIGNED_INBOUND_ALLOWED"] = True
    assert send_sms(client, payloads.inbound_sms("STOP")).status_code == 200
    assert RawWebhook.objects.get().signature_valid is None  # recorded as not checked
    assert InboundMessage.objects.get().consent == ConsentChange.OPT_OUT
    # The switch is the inbound one only, and a signature that is present is still checked.
    assert send_sms(client, payloads.inbound_sms("START")).status_code == 200
    forged = post_sms(client, payloads.inbound_sms("START"), secret="forged-secret-0000")
    assert forged.status_code == 403
    status = "/webhooks/vonage/status/"
    assert client.get(status, payloads.DLR_DELIVERED).status_code == 403


@pytest.mark.parametrize("missing", ["messageId", "msisdn"])
def test_sms_signed_but_malformed_is_400_and_kept(client, missing):
    params = {k: v for k, v in payloads.inbound_sms("STOP").items() if k != missing}
    response = post_sms(client, params, "form")
    assert response.status_code == 400
    assert RawWebhook.objects.get().parse_error == "messageId or msisdn is missing."
    assert not InboundMessage.objects.exists()


def test_delivery_receipt_sent_to_the_inbound_url_is_400(client):
    response = post_sms(client, payloads.DLR_DELIVERED)
    assert response.status_code == 400
    assert "/webhooks/vonage/status/" in RawWebhook.objects.get().parse_error
    assert not InboundMessage.objects.exists()


def test_subaccount_inbound_uses_the_subaccount_secret(client, vonage_registered):
    sub_secret = "subaccount-signature-secret-0123456789"
    vonage_registered["SUBACCOUNTS"] = {"sub12345": [sub_secret]}
    message = payloads.inbound_sms("STOP", **{"api-key": "sub12345"})
    assert post_sms(client, message, secret=sub_secret).status_code == 200
    assert post_sms(client, message).status_code == 403


# -- Messages API ---------------------------------------------------------------------------


def test_messages_stop_is_recorded_once_and_signalled_once(
    client, django_capture_on_commit_callbacks, consent_signals
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post_message(client, payloads.inbound_message("STOP"))
        again = post_message(client, payloads.inbound_message("STOP"))
    assert first.status_code == again.status_code == 200, first.content
    inbound = InboundMessage.objects.get()
    assert inbound.provider_message_id == payloads.INBOUND_UUID
    assert (inbound.keyword, inbound.consent) == ("STOP", ConsentChange.OPT_OUT)
    assert inbound.our_identity == payloads.OUR_NUMBER
    assert inbound.sender_hash == recipient_hash(PERSON_E164)
    assert consent_signals == [("STOP", True)]
    assert RawWebhook.objects.count() == 2


@pytest.mark.parametrize(
    "text, keyword, consent",
    [
        ("Start", "START", ConsentChange.OPT_IN),
        ("hello there", "", ""),
        ("STOP please", "", ""),  # sms.keyword says STOP; the whole text decides
    ],
)
def test_messages_keywords(client, text, keyword, consent):
    assert post_message(client, payloads.inbound_message(text)).status_code == 200
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent) == (keyword, consent)


def test_whatsapp_stop_carries_the_channel_in_our_identity(client):
    payload = payloads.inbound_message("stop", channel="whatsapp")
    assert post_message(client, payload).status_code == 200
    inbound = InboundMessage.objects.get()
    assert inbound.our_identity == f"whatsapp:{payloads.OUR_NUMBER}"  # as the status side
    assert inbound.sender_hash == recipient_hash(PERSON_E164)
    assert inbound.consent == ConsentChange.OPT_OUT


def test_messenger_sender_is_not_a_number(client):
    payload = payloads.inbound_message(
        "STOP", channel="messenger", to="107083064136738", **{"from": "3478526158826541"}
    )
    assert post_message(client, payload).status_code == 200
    inbound = InboundMessage.objects.get()
    assert inbound.our_identity == "messenger:107083064136738"
    assert inbound.sender_hash == ""  # a page-scoped id is not hashed as a phone number


def test_messages_image_caption_is_not_a_keyword(client):
    payload = payloads.inbound_message(
        "STOP", channel="mms", message_type="image", image={"url": "https://example.com/a.jpg"}
    )
    assert post_message(client, payload).status_code == 200
    assert InboundMessage.objects.get().consent == ""


def test_messages_forged_is_403_and_writes_nothing(client):
    response = post_message(client, payloads.inbound_message("START"), secret="forged-000000")
    assert response.status_code == 403
    assert_nothing_written()


def test_messages_tampered_body_is_403(client):
    body = json.dumps(payloads.inbound_message("hello")).encode()
    tampered = body.replace(b'"hello"', b'"START"')
    response = post_message(client, None, body=tampered, token=token_for(body))
    assert response.status_code == 403
    assert "payload_hash" in response.json()["detail"]
    assert_nothing_written()


def test_messages_unsigned_is_503_so_vonage_retries(client):
    body = json.dumps(payloads.inbound_message("STOP"))
    assert client.post(PATH, body, content_type=JSON).status_code == 503
    assert_nothing_written()


def test_messages_signed_but_malformed_is_400_and_kept(client):
    payload = {k: v for k, v in payloads.inbound_message("STOP").items() if k != "from"}
    response = post_message(client, payload)
    assert response.status_code == 400
    assert RawWebhook.objects.get().parse_error == "message_uuid or from is missing."
    assert not InboundMessage.objects.exists()


def test_messages_status_webhook_sent_to_the_inbound_url_is_400(client):
    response = post_message(client, payloads.MESSAGES_DELIVERED)
    assert response.status_code == 400
    assert "Status URL" in RawWebhook.objects.get().parse_error
    assert not InboundMessage.objects.exists()


def test_skip_verification_only_with_debug(client, settings):
    settings.SMS_DELIVERY = {**settings.SMS_DELIVERY, "SKIP_SIGNATURE_VERIFICATION": True}
    assert send_sms(client, payloads.inbound_sms("STOP")).status_code == 403
    settings.DEBUG = True
    assert send_sms(client, payloads.inbound_sms("STOP")).status_code == 200
    assert RawWebhook.objects.get().signature_valid is None
