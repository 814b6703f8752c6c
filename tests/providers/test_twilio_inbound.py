"""Twilio incoming-message webhooks: opt-out keywords become consent records."""

from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from delivery.events import ConsentChange, keyword_of
from delivery.models import InboundMessage, RawWebhook
from delivery.recipients import recipient_hash
from delivery.signals import consent_changed
from tests.fixtures.twilio import incoming

pytestmark = [pytest.mark.twilio, pytest.mark.django_db]

PATH = "/webhooks/twilio/inbound/"
URL = "http://testserver" + PATH
FORM = "application/x-www-form-urlencoded"


def post(client, params, secret="12345"):
    signature = RequestValidator(secret).compute_signature(URL, params)
    return client.post(
        PATH, urlencode(params), content_type=FORM, headers={"X-Twilio-Signature": signature}
    )


@pytest.fixture
def consent_signals():
    seen = []

    def receiver(sender, inbound, opted_out, **kwargs):
        seen.append((inbound.keyword, opted_out))

    consent_changed.connect(receiver)
    yield seen
    consent_changed.disconnect(receiver)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("STOP", ("STOP", ConsentChange.OPT_OUT)),
        ("  stop. ", ("STOP", ConsentChange.OPT_OUT)),
        ("Stop all", ("STOP ALL", ConsentChange.OPT_OUT)),
        ("unsubscribe", ("UNSUBSCRIBE", ConsentChange.OPT_OUT)),
        ("start", ("START", ConsentChange.OPT_IN)),
        ("HELP", ("HELP", ConsentChange.HELP)),
        ("Stop texting me", ("", "")),
        ("see you at 5", ("", "")),
        ("", ("", "")),
    ],
)
def test_keywords(text, expected):
    assert keyword_of(text) == expected


def test_stop_is_recorded_once_and_signalled_once(
    client, django_capture_on_commit_callbacks, consent_signals
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, incoming("STOP"))
        again = post(client, incoming("STOP"))  # Twilio retried
    assert first.status_code == again.status_code == 200
    assert first["Content-Type"].startswith("text/xml")
    assert first.content.decode().endswith("<Response/>")
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent, inbound.our_identity) == (
        "STOP",
        ConsentChange.OPT_OUT,
        "+15017122661",
    )
    assert inbound.sender_hash == recipient_hash("+14155550100")
    assert "4155550100" not in inbound.sender_encrypted
    assert consent_signals == [("STOP", True)]
    assert RawWebhook.objects.count() == 2


def test_latest_keyword_decides_consent(client):
    post(client, incoming("STOP", sid="SM" + "1" * 32))
    post(client, incoming("START", sid="SM" + "2" * 32))
    post(client, incoming("HELP", sid="SM" + "3" * 32))
    post(client, incoming("thanks!", sid="SM" + "4" * 32))
    latest = InboundMessage.objects.consent_for(recipient_hash("+14155550100"), "+15017122661")
    assert latest.consent == ConsentChange.OPT_IN
    assert InboundMessage.objects.consent_for(recipient_hash("+14155550100"), "72345") is None


def test_advanced_opt_out_type_is_honoured(client):
    post(client, incoming("ARRET", OptOutType="STOP"))  # a keyword the service was configured with
    inbound = InboundMessage.objects.get()
    assert (inbound.keyword, inbound.consent) == ("STOP", ConsentChange.OPT_OUT)


def test_forged_inbound_is_403_and_writes_nothing(client):
    assert post(client, incoming("STOP"), secret="forged").status_code == 403
    assert not InboundMessage.objects.exists() and not RawWebhook.objects.exists()


def test_signed_inbound_without_sender_is_400_and_kept_for_review(client):
    params = {k: v for k, v in incoming("STOP").items() if k != "From"}
    response = post(client, params)
    assert response.status_code == 400
    assert RawWebhook.objects.get().parse_error == "MessageSid or From is missing."


def test_provider_without_inbound_is_404(client, monkeypatch):
    from providers.twilio import TwilioProvider

    monkeypatch.setattr(TwilioProvider, "receives_inbound", False)
    assert post(client, incoming("STOP")).status_code == 404
    assert not RawWebhook.objects.exists()


def test_a_stop_sent_by_get_is_verified_and_recorded(client):
    """Numbers can be set to call their incoming-message webhook with GET: Twilio then signs the
    full URL, query string included, and nothing else."""
    query = urlencode(incoming("STOP"))
    signature = RequestValidator("12345").compute_signature(f"{URL}?{query}", {})
    response = client.get(f"{PATH}?{query}", headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.content
    assert InboundMessage.objects.get().keyword == "STOP"
    tampered = query.replace("STOP", "START")
    response = client.get(f"{PATH}?{tampered}", headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert InboundMessage.objects.count() == 1
