"""Reconciliation against the providers' APIs, faked at the HTTP layer (no network): Twilio and
Plivo with ``responses`` (their SDKs use requests), Telnyx with ``respx`` (httpx)."""

import io
import re
from datetime import timedelta

import httpx
import pytest
import requests
import responses
import respx
from django.core.management import CommandError, call_command
from django.utils import timezone

from delivery.events import EventSource
from delivery.lifecycle import ErrorCategory, Status
from delivery.models import Message, MessageEvent
from delivery.reconcile import RateLimiter, due, reconcile
from delivery.registry import get_provider
from tests.fixtures import twilio
from tests.providers.test_twilio import post

pytestmark = pytest.mark.django_db

ACCOUNT = "AC00000000000000000000000000000000"
SID = "SM" + "5" * 32
TWILIO_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json"
PLIVO_ID = "MAXXXXXXXXXXXXXXXXXX"
PLIVO_UUID = "10ab2b7a-0b0a-4a1e-8e2d-1f7b8c9d0e1f"
PLIVO_URL = f"https://api.plivo.com/v1/Account/{PLIVO_ID}/Message/{PLIVO_UUID}/"
TELNYX_ID = "40385f64-5717-4562-b3fc-2c963f66afa6"
TELNYX_URL = f"https://api.telnyx.com/v2/messages/{TELNYX_ID}"


def twilio_message(status, error_code=None):
    """The message resource as Twilio's API returns it (message-resource docs)."""
    return {
        "account_sid": ACCOUNT,
        "sid": SID,
        "status": status,
        "error_code": error_code,
        "error_message": "Unreachable destination handset" if error_code else None,
        "date_created": "Mon, 30 Nov 2026 01:00:00 +0000",
        "date_sent": "Mon, 30 Nov 2026 01:00:01 +0000",
        "date_updated": "Mon, 30 Nov 2026 01:00:42 +0000",
        "num_segments": "1",
        "to": "+15558675310",
        "from": "+15017122661",
        "body": "Your code is 123456",
        "direction": "outbound-api",
        "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{SID}.json",
    }


@pytest.fixture
def stuck(client):
    """A message whose "sent" arrived and whose final callback was lost, 13 hours ago."""
    assert post(client, twilio.callback("sent", sid=SID)).status_code == 200
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))
    return Message.objects.get()


def run(*args):
    out = io.StringIO()
    call_command("sms_delivery_reconcile", *args, stdout=out)
    return out.getvalue()


# -- the scenario: stuck in "sent", fixed by asking Twilio ------------------------------------


@responses.activate
def test_a_message_stuck_in_sent_is_fixed_by_asking_twilio(
    stuck, status_changes, django_capture_on_commit_callbacks
):
    responses.get(TWILIO_URL, json=twilio_message("delivered"))
    output = run("--dry-run")
    assert f"{stuck.public_id}: sent → delivered (dry run)" in output
    assert Message.objects.get().current_status == Status.SENT and not status_changes
    assert Message.objects.get().last_polled_at is None

    with django_capture_on_commit_callbacks(execute=True):
        output = run()
    assert "twilio: asked 1; 1 changed (sent → delivered: 1)" in output
    message = Message.objects.get()
    assert message.current_status == Status.DELIVERED and message.last_polled_at
    polled = MessageEvent.objects.get(source=EventSource.POLL)
    assert (polled.status, polled.raw_status, polled.raw_webhook) == (
        "delivered",
        "delivered",
        None,
    )
    assert polled.provider_occurred_at.isoformat() == "2026-11-30T01:00:42+00:00"
    assert "Your code" not in str(polled.raw_payload) and "+1555" not in str(polled.raw_payload)
    assert status_changes == [(Status.SENT, Status.DELIVERED)]
    request = responses.calls[-1].request
    assert request.headers["Authorization"].startswith("Basic ")  # the SDK's own auth

    assert "asking about 0 message(s)" in run()  # final now: nothing left to ask


@responses.activate
def test_a_failure_the_api_reports_carries_its_error_code(stuck):
    responses.get(TWILIO_URL, json=twilio_message("undelivered", error_code=30003))
    run()
    message = Message.objects.get()
    assert (message.current_status, message.error_code) == (Status.UNDELIVERED, "30003")
    assert message.error_category == ErrorCategory.UNREACHABLE_HANDSET


@responses.activate
def test_an_unchanged_answer_records_only_when_it_was_asked(stuck):
    responses.get(TWILIO_URL, json=twilio_message("sent"))
    assert "0 changed, 1 unchanged" in run()
    assert MessageEvent.objects.count() == 1 and Message.objects.get().last_polled_at
    assert "asking about 0 message(s)" in run()  # asked a moment ago: not again yet
    assert "asking about 1 message(s)" in run("--repoll-minutes", "0", "--dry-run")


def test_only_old_enough_and_recent_enough_messages_are_asked_about(stuck):
    provider = get_provider("twilio")
    now = timezone.now()
    window = {"now": now, "max_age": timedelta(days=7), "repoll_after": timedelta(hours=1)}
    assert list(due(provider, **window)) == [stuck]
    assert not due(provider, **{**window, "older_than": timedelta(hours=14)}).exists()
    assert not due(provider, **{**window, "max_age": timedelta(hours=12)}).exists()


# -- what can go wrong at the provider -----------------------------------------------------------


@responses.activate
def test_an_id_the_provider_does_not_know_is_reported(stuck):
    responses.get(TWILIO_URL, status=404, json={"code": 20404, "message": "not found"})
    output = run()
    assert "not found at the provider" in output and "1 not found" in output
    assert Message.objects.get().current_status == Status.SENT


@responses.activate
def test_429_is_waited_out_then_asked_again(stuck):
    responses.get(TWILIO_URL, status=429, json={"code": 20429, "message": "Too Many Requests"})
    responses.get(TWILIO_URL, json=twilio_message("delivered"))
    waits = []
    provider = get_provider("twilio")
    tally = reconcile(provider, due_now(provider), sleep=waits.append)
    assert tally.changed == 1 and len(responses.calls) == 2 and waits[0] == 2.0


@responses.activate
def test_a_provider_that_keeps_answering_429_stops_the_run_and_it_resumes_later(stuck):
    responses.get(TWILIO_URL, status=429, json={"code": 20429, "message": "Too Many Requests"})
    with pytest.raises(CommandError, match="kept answering 429"):
        run_without_waiting()
    assert Message.objects.get().last_polled_at is None  # not asked: asked again next time


def run_without_waiting(*args):
    provider = get_provider("twilio")
    tally = reconcile(provider, due_now(provider), sleep=lambda seconds: None)
    if tally.stopped:
        raise CommandError(tally.stopped)
    return tally


def due_now(provider):
    return due(
        provider,
        now=timezone.now(),
        max_age=timedelta(days=7),
        repoll_after=timedelta(hours=1),
    )


@responses.activate
def test_timeouts_and_server_errors_are_counted_not_fatal(stuck, client):
    post(client, twilio.callback("sent", sid="SM" + "6" * 32))
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))
    responses.get(TWILIO_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    other = TWILIO_URL.replace(SID, "SM" + "6" * 32)
    responses.get(other, status=503, json={"code": 20503, "message": "Service Unavailable"})
    tally = run_without_waiting()
    assert (tally.failed, tally.changed, tally.stopped) == (2, 0, "")
    assert Message.objects.filter(last_polled_at__isnull=True).count() == 2  # asked again later


def test_calls_are_spread_at_polls_per_second():
    clock = [0.0]
    waits = []

    def sleep(seconds):
        waits.append(round(seconds, 3))
        clock[0] += seconds

    limiter = RateLimiter(4, sleep, clock=lambda: clock[0])
    for _ in range(5):
        limiter.wait()
    assert waits == [0.25, 0.25, 0.25, 0.25]


# -- Plivo, Telnyx, Vonage ---------------------------------------------------------------------


@pytest.fixture
def plivo_enabled(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["plivo"] = {
        "AUTH_ID": PLIVO_ID,
        "AUTH_TOKENS": ["plivo-token-0123456789"],
    }


@responses.activate
def test_plivo_is_asked_through_its_sdk(plivo_enabled):
    from delivery.ingest import register_outbound

    register_outbound(provider="plivo", provider_message_id=PLIVO_UUID, to="+14155550123")
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))
    responses.get(
        PLIVO_URL,
        json={
            "api_id": "x",
            "message_uuid": PLIVO_UUID,
            "message_state": "undelivered",
            "error_code": "30",
            "message_time": "2026-11-30 01:00:00+00:00",
            "message_direction": "outbound",
            "units": 1,
        },
    )
    assert "plivo: asked 1; 1 changed (accepted → undelivered: 1)" in run("--provider", "plivo")
    message = Message.objects.get()
    assert (message.current_status, message.error_code) == (Status.UNDELIVERED, "30")


@responses.activate
def test_plivo_404_and_429(plivo_enabled):
    from delivery.ingest import register_outbound

    register_outbound(provider="plivo", provider_message_id=PLIVO_UUID, to="+14155550123")
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))
    responses.get(PLIVO_URL, status=404, json={"api_id": "x", "error": "not found"})
    assert "1 not found" in run("--provider", "plivo")
    responses.replace(responses.GET, PLIVO_URL, status=429, json={"error": "slow down"})
    provider = get_provider("plivo")
    tally = reconcile(
        provider,
        due(provider, now=timezone.now(), max_age=timedelta(days=7), repoll_after=timedelta(0)),
        sleep=lambda s: None,
    )
    assert "429" in tally.stopped


@pytest.fixture
def telnyx_enabled(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["telnyx"] = {
        "PUBLIC_KEYS": ["gA1TbZ0bJ8lHQx3kW3Q9m3Q6k0r2b6l8s1M2n3O4p5Q="],
        "API_KEY": "KEY0123456789",
    }


def telnyx_message(status):
    return {
        "data": {
            "record_type": "message",
            "direction": "outbound",
            "id": TELNYX_ID,
            "type": "SMS",
            "from": {"phone_number": "+13125550000", "carrier": "Telnyx"},
            "to": [{"phone_number": "+18665550001", "status": status, "carrier": "T-Mobile"}],
            "parts": 1,
            "errors": [],
            "sent_at": "2026-11-30T01:00:01.000+00:00",
            "completed_at": "2026-11-30T01:00:09.000+00:00",
        }
    }


@respx.mock
def test_telnyx_is_asked_through_its_sdk(telnyx_enabled):
    from delivery.ingest import register_outbound

    register_outbound(provider="telnyx", provider_message_id=TELNYX_ID, to="+18665550001")
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))
    route = respx.get(TELNYX_URL).mock(
        return_value=httpx.Response(200, json=telnyx_message("delivered"))
    )
    assert "telnyx: asked 1; 1 changed (accepted → delivered: 1)" in run("--provider", "telnyx")
    assert route.calls.last.request.headers["Authorization"] == "Bearer KEY0123456789"
    assert Message.objects.get().current_status == Status.DELIVERED


@respx.mock
def test_telnyx_429_waits_for_retry_after(telnyx_enabled):
    from delivery.ingest import register_outbound

    register_outbound(provider="telnyx", provider_message_id=TELNYX_ID, to="+18665550001")
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))
    respx.get(TELNYX_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json={"errors": []}),
            httpx.Response(200, json=telnyx_message("delivered")),
        ]
    )
    waits = []
    provider = get_provider("telnyx")
    assert reconcile(provider, due_now(provider), sleep=waits.append).changed == 1
    assert waits[0] == 7.0


def test_vonage_messages_are_listed_not_asked_about(sms_delivery_settings):
    from delivery.ingest import register_outbound

    sms_delivery_settings["PROVIDERS"]["vonage"] = {"SIGNATURE_SECRETS": ["s"]}
    register_outbound(provider="vonage", provider_message_id="0A00000012345678", to="+447700900001")
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))
    output = run("--provider", "vonage")
    assert "vonage: 1 message(s) not final, not asked about" in output
    assert "Reports API" in output


def test_missing_api_credentials_fail_each_message_without_a_call(telnyx_enabled, settings):
    from delivery.ingest import register_outbound

    settings.SMS_DELIVERY["PROVIDERS"]["telnyx"]["API_KEY"] = ""
    register_outbound(provider="telnyx", provider_message_id=TELNYX_ID, to="+18665550001")
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))
    output = run("--provider", "telnyx")
    assert "failed: API_KEY is needed" in output


def test_a_silent_provider_is_reported(client):
    from delivery.ingest import register_outbound

    register_outbound(provider="twilio", provider_message_id=SID, to="+15558675310")
    Message.objects.update(created_at=timezone.now() - timedelta(minutes=30))
    assert "twilio: no request since messages were sent (silent)" in run()


@responses.activate
def test_the_message_page_says_the_status_came_from_asking(stuck, admin_client):
    from django.urls import reverse

    responses.get(TWILIO_URL, json=twilio_message("delivered"))
    run()
    page = admin_client.get(reverse("admin:sms_delivery_message_change", args=[stuck.pk]))
    body = page.content.decode()
    assert "Poll (reconciliation)" in body and "its callback never came" in body


def many_stuck(count):
    from delivery.ingest import register_outbound

    for n in range(count):
        register_outbound(provider="twilio", provider_message_id=f"SM{n:032x}", to="+15558675310")
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))


@responses.activate
def test_more_than_a_batch_and_a_limit_each_message_asked_once(settings):
    many_stuck(450)
    api = re.compile(rf"https://api\.twilio\.com/2010-04-01/Accounts/{ACCOUNT}/Messages/.*")
    responses.get(api, json=twilio_message("sent"))
    settings.SMS_DELIVERY["PROVIDERS"]["twilio"]["POLLS_PER_SECOND"] = 10_000
    assert "asked 300;" in run("--limit", "300")
    assert "asked 150;" in run()
    asked = [call.request.url.rsplit("/", 1)[1] for call in responses.calls]
    assert len(asked) == 450 == len(set(asked))


@responses.activate
def test_a_message_another_run_claimed_is_skipped(stuck):
    responses.get(TWILIO_URL, json=twilio_message("delivered"))
    provider = get_provider("twilio")
    listed = due_now(provider)
    Message.objects.update(last_polled_at=timezone.now())  # an overlapping run took it
    tally = reconcile(provider, listed, sleep=lambda s: None)
    assert tally.asked == 0 and not responses.calls


def test_an_erased_persons_messages_are_not_asked_about(stuck):
    from delivery.erasure import erase

    erase(Message.objects.get().recipient, actor="dpo")
    assert not due_now(get_provider("twilio")).exists()


@respx.mock
def test_a_long_retry_after_is_not_waited_for_beyond_a_minute(telnyx_enabled):
    from delivery.ingest import register_outbound

    register_outbound(provider="telnyx", provider_message_id=TELNYX_ID, to="+18665550001")
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))
    respx.get(TELNYX_URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "86400"}, json={"errors": []}),
            httpx.Response(200, json=telnyx_message("delivered")),
        ]
    )
    waits = []
    provider = get_provider("telnyx")
    reconcile(provider, due_now(provider), sleep=waits.append)
    assert waits[0] == 60.0


@respx.mock
def test_a_telnyx_poll_keeps_no_number_or_text(telnyx_enabled):
    from delivery.ingest import register_outbound
    from tests.privacy import numbers_in

    register_outbound(provider="telnyx", provider_message_id=TELNYX_ID, to="+18665550001")
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))
    answer = telnyx_message("delivered")
    answer["data"]["text"] = "Your code is 123456"
    answer["data"]["cc"] = [{"phone_number": "+13125550101", "status": "delivered"}]
    answer["data"]["errors"] = [{"code": "0", "title": "ok", "detail": "to +13125550102"}]
    respx.get(TELNYX_URL).mock(return_value=httpx.Response(200, json=answer))
    run("--provider", "telnyx")
    payload = str(MessageEvent.objects.get(source=EventSource.POLL).raw_payload)
    assert "delivered" in payload and not numbers_in(payload) and "123456" not in payload
