"""Telnyx ``message.received`` webhooks: opt-out keywords become consent records.

Telnyx sends inbound messages to the messaging profile's one webhook URL, the same as delivery
reports, so they are accepted at ``/webhooks/telnyx/status/`` and, for a profile pointed there,
at ``/webhooks/telnyx/inbound/``. Requests are signed as in ``test_telnyx`` (Ed25519 over
``"{timestamp}|{body}"``) and verified by the SDK's ``verify_webhook_signature``.
"""

import json
import time

import pytest

from delivery.events import ConsentChange
from delivery.lifecycle import Status
from delivery.models import InboundMessage, Message, MessageEvent, RawWebhook
from delivery.recipients import recipient_hash, recipient_token
from delivery.signals import consent_changed
from providers.telnyx import _inbound_id
from tests.fixtures import telnyx as payloads
from tests.providers.test_telnyx import CURRENT, RETIRED, public_key, signature_headers

pytestmark = [pytest.mark.telnyx, pytest.mark.django_db]

STATUS = "/webhooks/telnyx/status/"
INBOUND = "/webhooks/telnyx/inbound/"
BOTH = pytest.mark.parametrize("path", [STATUS, INBOUND], ids=["status-url", "inbound-url"])
JSON = "application/json"
PERSON = payloads.TO  # the person who texts us (our messages go to that number)
OURS = payloads.FROM  # our Telnyx number


def post(client, payload, path=INBOUND, key=CURRENT, timestamp=None, body=None):
    if body is None:
        body = json.dumps(payload).encode()
    headers = signature_headers(body, key, timestamp)
    return client.post(path, body, content_type=JSON, headers=headers)


@pytest.fixture(autouse=True)
def telnyx_enabled(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["telnyx"] = {"PUBLIC_KEYS": [public_key(CURRENT)]}


@pytest.fixture
def consent_signals():
    seen = []

    def receiver(sender, inbound, opted_out, **kwargs):
        seen.append((inbound.our_identity, inbound.keyword, opted_out))

    consent_changed.connect(receiver)
    yield seen
    consent_changed.disconnect(receiver)


@BOTH
def test_stop_is_recorded_once_and_signalled_once(
    client, path, django_capture_on_commit_callbacks, consent_signals
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, payloads.inbound("STOP"), path)
        again = post(client, payloads.inbound("STOP", attempt=2), path)  # Telnyx retried
    assert first.status_code == again.status_code == 200
    assert first.json() == {"success": True, "processed": 1, "new": 1}
    assert again.json() == {"success": True, "processed": 1, "new": 0}
    inbound = InboundMessage.objects.get()
    assert (inbound.provider, inbound.provider_message_id) == ("telnyx", payloads.INBOUND_ID)
    assert (inbound.keyword, inbound.consent, inbound.our_identity) == (
        "STOP",
        ConsentChange.OPT_OUT,
        OURS,
    )
    assert inbound.sender_hash == recipient_hash(PERSON)
    assert PERSON[2:] not in inbound.sender_encrypted
    assert consent_signals == [(OURS, "STOP", True)]
    assert RawWebhook.objects.count() == 2  # both receipts kept as evidence
    assert inbound.raw_webhook == RawWebhook.objects.order_by("id").first()
    assert not Message.objects.exists() and not MessageEvent.objects.exists()


@pytest.mark.parametrize(
    "text, keyword, consent",
    [
        ("STOP", "STOP", ConsentChange.OPT_OUT),
        ("  unsubscribe. ", "UNSUBSCRIBE", ConsentChange.OPT_OUT),
        ("Start", "START", ConsentChange.OPT_IN),
        ("help", "HELP", ConsentChange.HELP),
        ("Stop texting me", "", ""),
        ("Thanks!", "", ""),
    ],
)
def test_keywords(client, text, keyword, consent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert post(client, payloads.inbound(text)).status_code == 200
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent) == (keyword, consent)
    signalled = consent in (ConsentChange.OPT_OUT, ConsentChange.OPT_IN)
    assert len(callbacks) == (1 if signalled else 0)


def test_start_after_stop_opts_back_in(client, consent_signals, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post(client, payloads.inbound("STOP", message_id="11111111-1111-4111-8111-111111111111"))
        post(client, payloads.inbound("START", message_id="22222222-2222-4222-8222-222222222222"))
        post(client, payloads.inbound("ok", message_id="33333333-3333-4333-8333-333333333333"))
    latest = InboundMessage.objects.consent_for(recipient_hash(PERSON), OURS)
    assert (latest.keyword, latest.consent) == ("START", ConsentChange.OPT_IN)
    assert consent_signals == [(OURS, "STOP", True), (OURS, "START", False)]


@pytest.mark.parametrize("value", ["STOP", "stop"])
def test_autoresponse_type_is_honoured(client, value):
    """Telnyx names the profile keyword it matched (SDK: ``autoresponse_type``)."""
    post(client, payloads.inbound("ARRET", autoresponse_type=value))
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent) == ("STOP", ConsentChange.OPT_OUT)


def test_several_of_our_numbers_give_one_record_each(client, consent_signals):
    ours = [OURS, "+13125550199"]
    body = payloads.inbound("STOP", to=ours, cc=[{"phone_number": "+13125550188"}])
    response = post(client, body)
    assert response.json() == {"success": True, "processed": 2, "new": 2}
    by_id = {r.provider_message_id: r for r in InboundMessage.objects.all()}
    ids = [f"{payloads.INBOUND_ID}:{recipient_token(n)}" for n in ours]
    assert set(by_id) == set(ids)
    assert [by_id[i].our_identity for i in ids] == ours
    assert {r.consent for r in by_id.values()} == {ConsentChange.OPT_OUT}
    assert {r.sender_hash for r in by_id.values()} == {recipient_hash(PERSON)}
    # the group participant in cc[] is not ours
    assert not InboundMessage.objects.filter(our_identity="+13125550188").exists()
    assert post(client, body).json() == {"success": True, "processed": 2, "new": 0}


def test_to_as_a_bare_number(client):
    """WhatsApp (SDK) and Telnyx's older examples send ``to`` as one string."""
    body = payloads.inbound("STOP")
    body["data"]["payload"]["to"] = OURS
    assert post(client, body).status_code == 200
    inbound = InboundMessage.objects.get()
    assert (inbound.provider_message_id, inbound.our_identity) == (payloads.INBOUND_ID, OURS)


def test_rcs_text_in_body_and_agent_as_our_identity(client):
    body = payloads.inbound("", body={"text": "stop"})
    body["data"]["payload"].update(
        type="RCS", to=[{"agent_id": "acme_agent", "agent_name": "Acme"}]
    )
    assert post(client, body).status_code == 200
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.our_identity) == ("STOP", "acme_agent")


def test_api_reference_example(client):
    assert post(client, payloads.DOCS_INBOUND).status_code == 200
    inbound = InboundMessage.objects.get()
    assert inbound.provider_message_id == "7ee4241c-f127-47e5-9c34-3aac291f8058"
    assert (inbound.our_identity, inbound.keyword, inbound.consent) == ("+18445550001", "", "")
    assert inbound.sender_hash == recipient_hash("+18665550001")


def test_delivery_report_on_the_inbound_url_is_stored(client):
    """A profile pointed at /inbound/ sends its delivery reports there too (one URL)."""
    assert post(client, payloads.FAILED_40008).json() == {"success": True, "processed": 1, "new": 1}
    assert Message.objects.get().current_status == Status.UNDELIVERED
    assert not InboundMessage.objects.exists()


def test_inbound_url_exists_for_telnyx(client):
    assert client.head(INBOUND).status_code == 200


# -- authenticity and malformed bodies ----------------------------------------------------------


@BOTH
def test_forged_inbound_is_403_and_writes_nothing(client, path):
    body = json.dumps(payloads.inbound("Thanks!")).encode()
    headers = signature_headers(body)
    forged = body.replace(b"Thanks!", b"STOP")
    assert client.post(path, forged, content_type=JSON, headers=headers).status_code == 403
    assert not InboundMessage.objects.exists() and not RawWebhook.objects.exists()


def test_unknown_key_and_stale_timestamp_are_403(client):
    assert post(client, payloads.inbound("STOP"), key=RETIRED).status_code == 403
    stale = int(time.time()) - 301
    assert post(client, payloads.inbound("STOP"), timestamp=stale).status_code == 403
    unsigned = client.post(INBOUND, json.dumps(payloads.inbound("STOP")), content_type=JSON)
    assert unsigned.status_code == 403
    assert not InboundMessage.objects.exists() and not RawWebhook.objects.exists()


def _inbound_without(*keys, **changes):
    body = payloads.inbound("STOP")
    payload = body["data"]["payload"]
    for key in keys:
        del payload[key]
    payload.update(changes)
    return body


@BOTH
@pytest.mark.parametrize(
    "body, error",
    [
        (_inbound_without("id"), "data.payload.id (the message id) is missing."),
        (_inbound_without("from"), "data.payload.from.phone_number (the sender) is missing."),
        (
            _inbound_without(**{"from": {"carrier": "T-MOBILE USA, INC."}}),
            "data.payload.from.phone_number (the sender) is missing.",
        ),
        (_inbound_without("to"), "data.payload.to lists none of our numbers."),
        (_inbound_without(to=[]), "data.payload.to lists none of our numbers."),
        (_inbound_without(to=[{"status": "webhook_delivered"}]), "data.payload.to lists none"),
    ],
    ids=["no-id", "no-from", "from-without-number", "no-to", "empty-to", "to-without-number"],
)
def test_signed_but_malformed_is_400_and_kept_for_review(client, path, body, error):
    response = post(client, body, path)
    assert response.status_code == 400
    raw = RawWebhook.objects.get()
    assert raw.parse_error.startswith(error)
    assert raw.signature_valid is True
    assert not InboundMessage.objects.exists()


def test_signed_not_json_is_400(client):
    response = post(client, None, body=b"STOP")
    assert response.status_code == 400
    assert RawWebhook.objects.get().parse_error.startswith("Body is not valid JSON")


def test_the_id_of_a_group_record_names_our_number_by_token_and_fits_the_column():
    short = _inbound_id(payloads.INBOUND_ID, OURS)
    assert short == f"{payloads.INBOUND_ID}:{recipient_token(OURS)}"
    long = _inbound_id(payloads.INBOUND_ID, "a-very-long-rcs-agent-identifier-" * 2)
    assert len(long) <= 64 and long.startswith(payloads.INBOUND_ID + ":")
    assert long != _inbound_id(payloads.INBOUND_ID, "another-very-long-rcs-agent-identifier-" * 2)
