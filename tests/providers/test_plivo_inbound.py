"""Plivo incoming messages (the application's message_url): opt-out keywords become consent.

Requests are signed like the status callbacks in ``test_plivo.py``: ``X-Plivo-Signature-V3`` made
with the plivo SDK's own V3 signer (``construct_post_url`` / ``construct_get_url`` +
``get_signature_v3``).
"""

from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from django.http import QueryDict
from plivo import plivoxml
from plivo.utils.signature_v3 import construct_get_url, construct_post_url, get_signature_v3

from delivery.adapters import WebhookRequest
from delivery.events import ConsentChange
from delivery.exceptions import MalformedPayload
from delivery.models import InboundMessage, MessageEvent, RawWebhook
from delivery.recipients import recipient_hash
from delivery.signals import consent_changed
from providers.plivo import PlivoProvider
from tests.fixtures import plivo as payloads

pytestmark = [pytest.mark.plivo, pytest.mark.django_db]

PATH = "/webhooks/plivo/inbound/"
URL = "http://testserver" + PATH
TOKEN = "plivo-auth-token-old"
NONCE = "05429567804466091622"
FORM = "application/x-www-form-urlencoded"
PERSON_E164 = "+" + payloads.PERSON


@pytest.fixture(autouse=True)
def plivo_enabled(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["plivo"] = {
        "AUTH_ID": "MAXXXXXXXXXXXXXXXXXX",
        "AUTH_TOKENS": [TOKEN, "plivo-auth-token-new"],
    }


def sign(method, url, params, secret=TOKEN):
    """``X-Plivo-Signature-V3`` as Plivo computes it, with the SDK's own functions."""
    base = construct_get_url(url, {}) if method == "GET" else construct_post_url(url, params)
    return get_signature_v3(secret, base.decode(), NONCE).decode()


def headers(signature):
    return {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": NONCE}


def post(client, params, secret=TOKEN, signed_params=None):
    signed = signed_params if signed_params is not None else params
    signature = sign("POST", URL, dict(signed), secret)
    return client.post(PATH, urlencode(params), content_type=FORM, headers=headers(signature))


def get(client, params, secret=TOKEN):
    path = f"{PATH}?{urlencode(params)}"
    return client.get(path, headers=headers(sign("GET", "http://testserver" + path, {}, secret)))


@pytest.fixture
def consent_signals():
    seen = []

    def receiver(sender, inbound, opted_out, **kwargs):
        seen.append((inbound.keyword, opted_out))

    consent_changed.connect(receiver)
    yield seen
    consent_changed.disconnect(receiver)


# -- keywords ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, keyword, consent",
    [
        ("STOP", "STOP", ConsentChange.OPT_OUT),
        (" stop. ", "STOP", ConsentChange.OPT_OUT),
        ("Unsubscribe", "UNSUBSCRIBE", ConsentChange.OPT_OUT),
        ("START", "START", ConsentChange.OPT_IN),
        ("help", "HELP", ConsentChange.HELP),
        ("Stop texting me", "", ""),
        ("see you at 5", "", ""),
    ],
)
def test_keywords_become_consent(client, text, keyword, consent):
    response = post(client, payloads.incoming(text))
    assert response.status_code == 200, response.content
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent) == (keyword, consent)


def test_stop_is_recorded_once_and_signalled_once(
    client, django_capture_on_commit_callbacks, consent_signals
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, payloads.incoming("STOP"))
        again = post(client, payloads.incoming("STOP"))  # Plivo retried
    assert first.status_code == again.status_code == 200
    inbound = InboundMessage.objects.get()
    assert (inbound.provider, inbound.provider_message_id) == ("plivo", payloads.INBOUND_UUID)
    assert (inbound.keyword, inbound.consent) == ("STOP", ConsentChange.OPT_OUT)
    assert inbound.our_identity == payloads.OUR_NUMBER  # as Plivo writes our number
    # Plivo's "14155550100" is hashed as the E.164 "+14155550100", like our recipients.
    assert inbound.sender_hash == recipient_hash(PERSON_E164)
    assert payloads.PERSON[1:] not in inbound.sender_encrypted
    assert consent_signals == [("STOP", True)]
    assert RawWebhook.objects.count() == 2  # every receipt is evidence
    assert inbound.raw_webhook == RawWebhook.objects.order_by("id").first()
    assert not MessageEvent.objects.exists()


def test_start_is_signalled_as_an_opt_in(
    client, django_capture_on_commit_callbacks, consent_signals
):
    with django_capture_on_commit_callbacks(execute=True):
        post(client, payloads.incoming("STOP", uuid="11111111-3d1f-11ef-9b0e-0242ac110002"))
        post(client, payloads.incoming("START", uuid="22222222-3d1f-11ef-9b0e-0242ac110002"))
        post(client, payloads.incoming("thanks", uuid="33333333-3d1f-11ef-9b0e-0242ac110002"))
    assert consent_signals == [("STOP", True), ("START", False)]


def test_latest_keyword_decides_consent(client):
    post(client, payloads.incoming("STOP", uuid="11111111-3d1f-11ef-9b0e-0242ac110002"))
    post(client, payloads.incoming("START", uuid="22222222-3d1f-11ef-9b0e-0242ac110002"))
    post(client, payloads.incoming("HELP", uuid="33333333-3d1f-11ef-9b0e-0242ac110002"))
    post(client, payloads.incoming("ok thanks", uuid="44444444-3d1f-11ef-9b0e-0242ac110002"))
    person = recipient_hash(PERSON_E164)
    assert InboundMessage.objects.consent_for(person).consent == ConsentChange.OPT_IN
    mine = InboundMessage.objects.consent_for(person, payloads.OUR_NUMBER)
    assert mine.keyword == "START"
    assert InboundMessage.objects.consent_for(person, "72345") is None


def test_message_intent_is_honoured(client):
    # Plivo flagged a standard opt-out keyword our own list does not know.
    post(client, payloads.incoming("Arrêt", MessageIntent="optout"))
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent) == ("STOP", ConsentChange.OPT_OUT)


def test_keyword_counts_without_message_intent(client):
    # Short codes get no MessageIntent, and the field may be left out altogether.
    post(client, payloads.incoming("STOP", MessageIntent=None))
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent) == ("STOP", ConsentChange.OPT_OUT)


def test_mms_text_is_read_from_body(client):
    assert post(client, payloads.incoming_mms("Stop")).status_code == 200
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent) == ("STOP", ConsentChange.OPT_OUT)
    assert inbound.raw_webhook.sealed.body  # the media URL stays in the raw request only


def test_whatsapp_text_is_read_from_body(client):
    assert post(client, payloads.incoming_whatsapp("unsubscribe")).status_code == 200
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent) == ("UNSUBSCRIBE", ConsentChange.OPT_OUT)
    assert inbound.sender_hash == recipient_hash(PERSON_E164)


def test_get_message_url_signed_over_its_query_string(client):
    # An application whose message_method is GET.
    response = get(client, payloads.incoming("STOP"))
    assert response.status_code == 200, response.content
    assert InboundMessage.objects.get().consent == ConsentChange.OPT_OUT
    assert RawWebhook.objects.get().method == "GET"


# -- the answer ----------------------------------------------------------------------------------


def test_answer_is_empty_plivo_xml(client):
    response = post(client, payloads.incoming("STOP"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    # Our own answer and the SDK's output are parsed, never a third party's XML.
    document = ElementTree.fromstring(response.content)  # noqa: S314
    assert (document.tag, list(document)) == ("Response", [])  # no <Message>: no reply is sent
    # The same document as the SDK's empty response.
    sdk = ElementTree.fromstring(plivoxml.ResponseElement().to_string())  # noqa: S314
    assert (sdk.tag, list(sdk)) == (document.tag, [])


def test_answer_is_the_same_for_a_duplicate(client):
    post(client, payloads.incoming("STOP"))
    again = post(client, payloads.incoming("STOP"))
    assert again.status_code == 200
    assert again.content.decode() == PlivoProvider.INBOUND_RESPONSE


# -- authenticity --------------------------------------------------------------------------------


def test_forged_inbound_is_403_and_writes_nothing(client):
    assert post(client, payloads.incoming("STOP"), secret="forged").status_code == 403
    assert not InboundMessage.objects.exists() and not RawWebhook.objects.exists()


def test_unsigned_inbound_is_403(client):
    response = client.post(PATH, urlencode(payloads.incoming("STOP")), content_type=FORM)
    assert response.status_code == 403
    assert not InboundMessage.objects.exists() and not RawWebhook.objects.exists()


def test_changed_text_is_403(client):
    # V3 covers every field: a STOP cannot be turned into a START.
    response = post(client, payloads.incoming("START"), signed_params=payloads.incoming("STOP"))
    assert response.status_code == 403
    assert not InboundMessage.objects.exists()


def test_signature_for_the_status_url_is_rejected(client):
    params = payloads.incoming("STOP")
    signature = sign("POST", "http://testserver/webhooks/plivo/status/", params)
    response = client.post(PATH, urlencode(params), content_type=FORM, headers=headers(signature))
    assert response.status_code == 403


# -- malformed -----------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["From", "MessageUUID"])
def test_signed_inbound_without_a_required_field_is_400_and_kept_for_review(client, missing):
    params = payloads.incoming("STOP", **{missing: None})
    response = post(client, params)
    assert response.status_code == 400
    assert RawWebhook.objects.get().parse_error == "MessageUUID or From is missing."
    assert not InboundMessage.objects.exists()


def test_signed_but_badly_encoded_is_400_and_kept_for_review(client):
    body = urlencode(payloads.incoming("STOP")) + "&Extra=%FF%FE"
    signature = sign("POST", URL, dict(QueryDict(body).lists()))  # as Django decodes it
    response = client.post(PATH, body, content_type=FORM, headers=headers(signature))
    assert response.status_code == 400
    assert "UTF-8" in RawWebhook.objects.get().parse_error
    assert not InboundMessage.objects.exists()


def test_parse_inbound_directly():
    body = urlencode(payloads.incoming("STOP")).encode()
    request = WebhookRequest("POST", URL, PATH, body, {"Content-Type": FORM})
    [event] = PlivoProvider({}).parse_inbound(request)
    assert (event.sender, event.our_identity) == (PERSON_E164, payloads.OUR_NUMBER)
    assert event.raw_payload["Type"] == "sms"
    with pytest.raises(MalformedPayload):
        PlivoProvider({}).parse_inbound(WebhookRequest("POST", URL, PATH, b"Text=STOP", {}))
