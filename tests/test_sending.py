"""Sending through the app (``delivery.sending.send_sms``), the providers' APIs faked at the HTTP
layer with ``responses`` (Twilio's and Plivo's SDKs use requests): no network."""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest
import requests
import responses
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery.events import EventSource
from delivery.exceptions import ConfigurationError, InvalidNumber, Suppressed
from delivery.lifecycle import ErrorCategory, Status
from delivery.models import Message, MessageEvent, Suppression
from delivery.reconcile import due
from delivery.registry import get_provider
from delivery.sending import Consent, send_sms
from delivery.suppression import is_suppressed
from tests.fixtures import twilio
from tests.providers.test_twilio import post

pytestmark = pytest.mark.django_db

ACCOUNT = "AC00000000000000000000000000000000"
CREATE_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
BASE = "https://sms.example.com"
STATUS_URL = BASE + "/webhooks/twilio/status/"
SID = "SM" + "4" * 32
TO = "+14155550123"
SENDER = "+15017122661"


@pytest.fixture(autouse=True)
def base_url(sms_delivery_settings):
    sms_delivery_settings["WEBHOOK_BASE_URL"] = BASE
    sms_delivery_settings["PROVIDERS"]["twilio"] = {
        **sms_delivery_settings["PROVIDERS"]["twilio"],
        "DEFAULT_SENDER": SENDER,
    }
    return sms_delivery_settings


def created(sid=SID, status="queued", **extra):
    """Twilio's answer to a message created (message-resource docs)."""
    return {
        "account_sid": ACCOUNT,
        "sid": sid,
        "status": status,
        "from": extra.pop("from_", SENDER),
        "to": TO,
        "messaging_service_sid": extra.pop("messaging_service_sid", None),
        "num_segments": "1",
        "error_code": None,
        "error_message": None,
        "direction": "outbound-api",
        "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json",
        **extra,
    }


def sent_form(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


def callback(client, word, sid=SID, **fields):
    """A status callback signed for the URL Twilio was given (the fragment is not signed)."""
    return post(client, twilio.callback(word, sid=sid, To=TO, **fields), url=STATUS_URL)


@responses.activate
def test_an_unreadable_number_raises_and_nothing_is_sent_or_recorded():
    with pytest.raises(InvalidNumber) as refused:  # a national number needs DEFAULT_REGION
        send_sms("(415) 555-0123", "Your code is 123456")
    assert "555" not in str(refused.value)
    assert not responses.calls and not Message.objects.exists()


@responses.activate
def test_a_send_is_recorded_with_its_callback_url_consent_and_accepted_event(client, base_url):
    base_url["DEFAULT_REGION"] = "US"
    responses.post(CREATE_URL, json=created(), status=201)
    message = send_sms(
        "(415) 555-0123",
        "Your code is 123456",
        template_key="login_code",
        product_reference="login:42",
        consent=Consent("sign-up form", at=datetime(2026, 11, 1, tzinfo=UTC)),
    )
    (call,) = responses.calls
    form = sent_form(call)
    assert form["To"] == TO and form["From"] == SENDER and form["Body"] == "Your code is 123456"
    assert form["StatusCallback"] == STATUS_URL + "#rc=3&rp=ct,rt,5xx"
    assert message.provider_message_id == SID and message.current_status == Status.ACCEPTED
    assert message.registered_at and message.template_key == "login_code"
    assert message.consent_source == "sign-up form" and message.consent_at.day == 1
    assert message.recipient_hash and message.destination_country == "US"
    (event,) = MessageEvent.objects.all()
    assert event.source == EventSource.SEND and event.raw_status == "queued"

    # Twilio calls the URL back, signed without the fragment: the report lands on the message.
    assert callback(client, "delivered").status_code == 200
    message.refresh_from_db()
    assert message.current_status == Status.DELIVERED and Message.objects.count() == 1


@responses.activate
def test_a_messaging_service_sends_as_itself():
    responses.post(CREATE_URL, json=created(messaging_service_sid="MG" + "1" * 32), status=201)
    send_sms(TO, "Hello", sender="MG" + "1" * 32)
    form = sent_form(responses.calls[0])
    assert form["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in form


@responses.activate
def test_an_api_error_is_a_rejected_event_with_the_code_and_the_caller_gets_the_message():
    responses.post(
        CREATE_URL,
        status=400,
        json={"code": 21211, "message": f"The 'To' number {TO} is not a valid phone number."},
    )
    message = send_sms(TO, "Hello")
    assert message.current_status == Status.REJECTED and message.error_code == "21211"
    assert message.provider_message_id.startswith("local:msg_")
    event = MessageEvent.objects.get()
    assert event.source == EventSource.SEND and "not a valid phone number" in event.error_detail
    assert TO not in event.error_detail and "5550123" not in event.error_detail


@pytest.mark.parametrize(
    "field, value",
    [
        ("template_key", "t" * 101),
        ("product_reference", "order:\x007"),
        ("idempotency_key", "k" * 101),
        ("sender", "+1" + "5" * 120),
        ("consent", Consent("form" * 60)),
        ("template_key", 7),
    ],
)
@responses.activate
def test_a_value_its_column_cannot_store_raises_before_anything_is_sent(field, value):
    with pytest.raises((ValueError, TypeError)) as refused:
        send_sms(TO, "Hello", **{field: value})
    assert TO not in str(refused.value)
    assert not responses.calls and not Message.objects.exists()


@responses.activate
def test_a_server_error_is_failed():
    responses.post(CREATE_URL, status=503, json={"code": 20503, "message": "Unavailable"})
    assert send_sms(TO, "Hello").current_status == Status.FAILED


@responses.activate
def test_no_answer_puts_the_message_in_the_review_queue_it_may_have_been_sent():
    responses.post(CREATE_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    message = send_sms(TO, "Hello")
    assert message.current_status == Status.UNKNOWN and message.needs_review
    assert "may have been sent" in MessageEvent.objects.get().error_detail
    # Reconciliation has no provider id to ask about it.
    later = message.created_at + timedelta(days=1)
    twilio_adapter = get_provider("twilio")
    assert not due(twilio_adapter, now=later, max_age=timedelta(days=7), repoll_after=timedelta())


@responses.activate
def test_a_callback_that_outruns_the_api_answer_is_merged_into_the_message(client):
    """Twilio may call back before its API answer reaches us: the callback creates a message
    under the SID, which the answer then merges into the one recorded before the call."""

    def answer(request):
        recorded = Message.objects.get()
        assert recorded.provider_message_id.startswith("local:")  # recorded before the call
        assert callback(client, "sent").status_code == 200
        assert callback(client, "delivered").status_code == 200
        return 201, {}, json.dumps(created())

    responses.add_callback(responses.POST, CREATE_URL, callback=answer)
    message = send_sms(TO, "Hello", product_reference="order:7")
    assert Message.objects.count() == 1 and message.provider_message_id == SID
    assert message.current_status == Status.DELIVERED and message.product_reference == "order:7"
    assert message.events.count() == 3 and message.first_sent_at and message.delivered_at


@responses.activate
def test_stop_suppresses_the_next_send_and_start_lifts_it(client, sms_delivery_settings):
    inbound = "/webhooks/twilio/inbound/"
    stop = twilio.incoming("STOP", From=TO, To=SENDER)
    assert post(client, stop, url=BASE + inbound, path=inbound).status_code == 200
    assert is_suppressed(TO) and is_suppressed(TO, sender=SENDER)
    with pytest.raises(Suppressed) as refused:
        send_sms(TO, "Hello")
    assert TO not in str(refused.value) and "0123" not in str(refused.value)
    assert not responses.calls and not Message.objects.exists()

    start = twilio.incoming("START", sid="SM" + "9" * 32, From=TO, To=SENDER)
    assert post(client, start, url=BASE + inbound, path=inbound).status_code == 200
    assert not is_suppressed(TO)
    responses.post(CREATE_URL, json=created(), status=201)
    assert send_sms(TO, "Hello").current_status == Status.ACCEPTED
    entry = Suppression.objects.get()
    assert entry.lifted_at and entry.source == Suppression.Source.KEYWORD
    assert entry.scope == SENDER and entry.lift_reason == "texted START"


def test_per_sender_suppression_only_stops_that_sender(sms_delivery_settings):
    from delivery.recipients import recipient_hash
    from delivery.suppression import suppress

    suppress(recipient_hash(TO), scope=SENDER, source="keyword", reason="STOP")
    assert is_suppressed(TO, sender="+15550001111")  # the safe default: every sender
    sms_delivery_settings["SUPPRESSION_PER_SENDER"] = True
    assert not is_suppressed(TO, sender="+15550001111") and is_suppressed(TO, sender=SENDER)


@responses.activate
def test_an_opted_out_error_suppresses_the_recipient(client):
    responses.post(
        CREATE_URL,
        status=400,
        json={"code": 21610, "message": "Attempt to send to unsubscribed recipient"},
    )
    message = send_sms(TO, "Hello")
    assert message.error_category == ErrorCategory.OPT_OUT
    entry = Suppression.objects.get()
    assert entry.source == Suppression.Source.ERROR_CODE and entry.reason == "twilio error 21610"
    with pytest.raises(Suppressed):
        send_sms(TO, "Hello again")
    assert len(responses.calls) == 1


@responses.activate
def test_a_retried_call_with_the_same_idempotency_key_does_not_send_twice():
    responses.post(CREATE_URL, json=created(), status=201)
    first = send_sms(TO, "Your order shipped", idempotency_key="order:7:shipped")
    again = send_sms(TO, "Your order shipped", idempotency_key="order:7:shipped")
    assert again.pk == first.pk and len(responses.calls) == 1


@responses.activate
def test_a_resend_links_to_the_message_it_retries():
    responses.post(CREATE_URL, json=created(status="failed"), status=201)
    responses.post(CREATE_URL, json=created(sid="SM" + "6" * 32), status=201)
    first = send_sms(TO, "Hello")
    second = send_sms(TO, "Hello", retry_of=first)
    assert second.retry_of == first and list(first.retries.all()) == [second]


def test_sending_needs_the_public_base_url(sms_delivery_settings):
    sms_delivery_settings["WEBHOOK_BASE_URL"] = None
    with pytest.raises(ConfigurationError, match="WEBHOOK_BASE_URL"):
        send_sms(TO, "Hello")
    assert not Message.objects.exists()


def test_a_provider_that_is_not_enabled_cannot_send():
    with pytest.raises(ConfigurationError, match="vonage"):
        send_sms(TO, "Hello", provider="vonage")


# -- Plivo ------------------------------------------------------------------------------------

PLIVO_ID = "MAXXXXXXXXXXXXXXXXXX"
PLIVO_URL = f"https://api.plivo.com/v1/Account/{PLIVO_ID}/Message/"
PLIVO_UUID = "10ab2b7a-0b0a-4a1e-8e2d-1f7b8c9d0e1f"


@pytest.fixture
def plivo(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["plivo"] = {
        "AUTH_ID": PLIVO_ID,
        "AUTH_TOKENS": ["plivo-token"],
        "DEFAULT_SENDER": "14155551234",
    }


@responses.activate
def test_plivo_sends_with_its_callback_url(plivo):
    responses.post(
        PLIVO_URL,
        status=202,
        json={"api_id": "x", "message": "message(s) queued", "message_uuid": [PLIVO_UUID]},
    )
    message = send_sms(TO, "Hello", provider="plivo")
    sent = json.loads(responses.calls[0].request.body)
    assert sent["dst"] == TO[1:] and sent["src"] == "14155551234" and sent["text"] == "Hello"
    assert sent["url"] == BASE + "/webhooks/plivo/status/"
    assert message.provider_message_id == PLIVO_UUID
    assert message.current_status == Status.ACCEPTED


@responses.activate
def test_plivo_refusing_the_send_is_rejected(plivo):
    responses.post(PLIVO_URL, status=400, json={"api_id": "x", "error": "invalid dst"})
    assert send_sms(TO, "Hello", provider="plivo").current_status == Status.REJECTED


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(to=st.text(max_size=30), body=st.text(max_size=200))
def test_any_number_and_body_either_sends_once_or_raises_having_done_nothing(to, body):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
        api.post(CREATE_URL, json=created(), status=201)
        before = Message.objects.count()
        try:
            message = send_sms(to, body)
        except (InvalidNumber, Suppressed):
            assert Message.objects.count() == before and not api.calls
            return
        assert len(api.calls) == 1 and sent_form(api.calls[0]).get("Body", "") == body
        assert message.recipient_hash and message.provider_message_id == SID
        Message.objects.filter(pk=message.pk).delete()  # the next example's SID is the same


def test_missing_credentials_refuse_before_anything_is_recorded(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["twilio"] = {"AUTH_TOKENS": ["12345"]}  # no ACCOUNT_SID
    with pytest.raises(ConfigurationError, match="ACCOUNT_SID"):
        send_sms(TO, "Hello")
    assert not Message.objects.exists()


@responses.activate
def test_an_unexpected_error_is_recorded_for_review_and_raised():
    with pytest.raises(TypeError):
        send_sms(TO, "Hello", not_an_option=1)  # the SDK refuses an unknown argument
    message = Message.objects.get()
    assert message.current_status == Status.UNKNOWN and message.needs_review
    assert "TypeError" in MessageEvent.objects.get().error_detail
    assert not responses.calls


@responses.activate
def test_too_many_requests_is_failed_not_rejected():
    responses.post(CREATE_URL, status=429, json={"code": 20429, "message": "Too Many Requests"})
    message = send_sms(TO, "Hello")
    assert message.current_status == Status.FAILED and message.error_code == "20429"
    assert not message.needs_review  # the provider answered


@responses.activate
def test_an_alphanumeric_sender_starting_with_mg_is_a_from():
    responses.post(CREATE_URL, json=created(from_="MGMGRAND"), status=201)
    send_sms(TO, "Hello", sender="MGMGRAND")
    assert sent_form(responses.calls[0])["From"] == "MGMGRAND"


def test_a_send_never_answered_is_returned_as_it_is_by_its_key():
    """A process died during the call: the retry must not send again (it may have been sent)."""
    from delivery.sending import _record

    _record("twilio", TO, consent=None, idempotency_key="order:9", sender_identity=SENDER)
    with responses.RequestsMock() as api:  # any call would fail the test
        again = send_sms(TO, "Hello", idempotency_key="order:9")
        assert not api.calls
    assert again.needs_review and again.provider_message_id.startswith("local:")


@responses.activate
def test_the_message_receivers_saw_is_the_one_the_caller_gets(
    client, django_capture_on_commit_callbacks
):
    """A failed callback outruns the answer: its message was announced; the send is folded
    into that message, not the other way round."""
    from delivery.signals import message_status_changed

    announced = []

    def receiver(sender, message, **kwargs):
        announced.append(message.pk)

    def answer(request):
        assert callback(client, "failed", ErrorCode="30008").status_code == 200
        return 201, {}, json.dumps(created())

    message_status_changed.connect(receiver)
    try:
        responses.add_callback(responses.POST, CREATE_URL, callback=answer)
        with django_capture_on_commit_callbacks(execute=True):
            message = send_sms(TO, "Hello", product_reference="order:7", template_key="order")
    finally:
        message_status_changed.disconnect(receiver)
    assert announced == [message.pk] and Message.objects.count() == 1
    assert message.product_reference == "order:7" and message.current_status == Status.FAILED


@responses.activate
def test_plivo_not_answering_is_unknown(plivo):
    responses.post(PLIVO_URL, body=requests.exceptions.ConnectTimeout("timed out"))
    message = send_sms(TO, "Hello", provider="plivo")
    assert message.current_status == Status.UNKNOWN and message.needs_review


def test_start_to_another_sender_does_not_lift_a_stop(client):
    inbound = "/webhooks/twilio/inbound/"
    stop = twilio.incoming("STOP", From=TO, To=SENDER)
    start = twilio.incoming("START", sid="SM" + "9" * 32, From=TO, To="+15550001111")
    for message in (stop, start):
        assert post(client, message, url=BASE + inbound, path=inbound).status_code == 200
    assert is_suppressed(TO) and is_suppressed(TO, sender=SENDER)


def test_a_stop_after_a_leads_entry_outlives_it(client):
    from delivery.recipients import recipient_hash
    from delivery.suppression import suppress

    suppress(recipient_hash(TO), scope=SENDER, source="console", reason="asked", by="lead")
    inbound = "/webhooks/twilio/inbound/"
    stop = twilio.incoming("STOP", From=TO, To=SENDER)
    assert post(client, stop, url=BASE + inbound, path=inbound).status_code == 200
    assert Suppression.objects.filter(lifted_at=None).count() == 2
    Suppression.objects.filter(source="console").update(lifted_at=timezone.now())
    assert is_suppressed(TO)


def test_start_never_lifts_a_leads_entry(client):
    from delivery.recipients import recipient_hash
    from delivery.suppression import suppress

    suppress(recipient_hash(TO), scope=SENDER, source="console", reason="legal hold", by="lead")
    inbound = "/webhooks/twilio/inbound/"
    start = twilio.incoming("START", From=TO, To=SENDER)
    assert post(client, start, url=BASE + inbound, path=inbound).status_code == 200
    assert is_suppressed(TO) and Suppression.objects.get().lifted_at is None
