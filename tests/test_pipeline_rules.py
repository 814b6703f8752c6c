"""The webhook pipeline's rules, each shown on the request that once broke it.

- Before verification, any failure is a 4xx and nothing is written.
- A verified request the app cannot read is a 400 with a reason, kept for review.
- Values the database would refuse are fitted (or the request is kept for review), never a 503.
- Only an outage of the database answers 5xx.
- Nothing the host project configures (Accept negotiation, versioning, exception handler,
  ATOMIC_REQUESTS) decides whether a provider's request is processed.
"""

import itertools
import json
import logging

import pytest
from django.db import DataError, OperationalError
from django.test import Client, RequestFactory
from django.urls import resolve
from hypothesis import given
from hypothesis import strategies as st
from vonage_http_client.auth import Auth

from delivery import statements
from delivery.lifecycle import Status
from delivery.models import InboundMessage, Message, MessageEvent, RawWebhook
from delivery.signals import message_status_changed
from delivery.views import ProviderWebhookView
from providers.twilio import TwilioProvider
from tests.fixtures import telnyx, twilio, vonage
from tests.fuzzing import PROVIDER_SETTINGS, VONAGE_SECRET, Spec, build
from tests.test_fuzz import send

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def every_provider(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"] = {name: dict(o) for name, o in PROVIDER_SETTINGS.items()}


@pytest.fixture
def client():
    return Client(raise_request_exception=False)  # a crash is a 500 here, not an exception


def request(client, provider, payload, *, kind="status", transport="form", signed=True, **spec):
    """Send ``payload`` to ``provider``, signed with its SDK unless ``signed`` is False."""
    made = build(
        Spec(provider, kind, transport, payload, signed=signed, **spec), "http://testserver"
    )
    return send(client, made)


def without(payload: dict, *names: str) -> dict:
    return {key: value for key, value in payload.items() if key not in names}


def nothing_written():
    return not (
        RawWebhook.objects.exists()
        or MessageEvent.objects.exists()
        or Message.objects.exists()
        or InboundMessage.objects.exists()
    )


def kept_for_review() -> RawWebhook:
    """The one stored request, unparsed; and no event or message came of it."""
    raw = RawWebhook.objects.get()
    assert raw.parse_error
    assert not MessageEvent.objects.exists() and not Message.objects.exists()
    return raw


# -- before verification: 4xx, nothing written ------------------------------------------------


def test_twilio_json_without_body_sha256_is_403(client):
    body = json.dumps(twilio.DELIVERED).encode()
    response = client.post(
        "/webhooks/twilio/status/",
        body,
        content_type="application/json",
        headers={"X-Twilio-Signature": "c2lnbmF0dXJl"},
    )
    assert response.status_code == 403
    assert "bodySHA256" in response.json()["detail"]
    assert nothing_written()


def test_vonage_signature_of_non_ascii_characters_is_403(client):
    query = {**vonage.DLR_DELIVERED, "timestamp": "1796135982", "sig": "é" * 64}
    response = client.get("/webhooks/vonage/status/", query)
    assert response.status_code == 403
    assert nothing_written()


def test_vonage_infinite_timestamp_is_403(client):
    """Correctly signed (the SDK signs the value as "inf"), so the check reaches the time."""
    fields = {**vonage.DLR_DELIVERED, "nonce": "n-1"}
    auth = Auth(api_key="k", signature_secret=VONAGE_SECRET, signature_method="sha256")
    sig = auth.sign_params({**fields, "timestamp": float("inf")})
    body = json.dumps({**fields, "sig": sig})[:-1] + ', "timestamp": 1e999}'
    response = client.post("/webhooks/vonage/status/", body, content_type="application/json")
    assert response.status_code == 403
    assert "not Unix time" in response.json()["detail"]
    assert nothing_written()


@pytest.mark.parametrize("provider", ["vonage", "twilio", "plivo", "telnyx"])
def test_deeply_nested_json_is_refused_before_verification(client, provider):
    body = b"[" * 2000 + b"1" + b"]" * 2000
    response = client.post(f"/webhooks/{provider}/status/", body, content_type="application/json")
    assert response.status_code == 403, response.content
    assert nothing_written()


def test_plivo_url_with_an_undecodable_escape_is_403(client):
    response = client.post(
        "/webhooks/plivo/status/?x=%FF",
        "MessageUUID=x&Status=sent",
        content_type="application/x-www-form-urlencoded",
        headers={"X-Plivo-Signature-V3": "c2ln", "X-Plivo-Signature-V3-Nonce": "1"},
    )
    assert response.status_code == 403
    assert nothing_written()


def test_a_form_of_more_fields_than_django_allows_is_403(client, settings):
    """Read as Django reads ``request.POST``: past ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` the form
    is refused (TooManyFieldsSent), so the signature over it cannot be checked."""
    fields = {**twilio.DELIVERED, **{f"Extra{n}": "x" for n in range(25)}}
    made = build(Spec("twilio", "status", "form", fields), "http://testserver")
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 20
    response = send(client, made)
    assert response.status_code == 403, response.content
    assert nothing_written()
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
    assert send(client, made).status_code == 200


@given(st.binary(max_size=80) | st.text(alphabet="ab=&%+;é\x00 2F", max_size=40).map(str.encode))
def test_a_form_body_reads_as_django_reads_request_post(body):
    """Read as ``request.POST`` is (its field limit too), and refused as not UTF-8 exactly when
    the body, or (in a form) one of its %-escapes, is not: one parse does both."""
    from urllib.parse import parse_qsl

    from django.core.exceptions import TooManyFieldsSent
    from django.http import QueryDict
    from django.test import override_settings

    from delivery.adapters import WebhookRequest
    from delivery.exceptions import MalformedPayload

    def read(make):
        try:
            return list(make().lists())
        except TooManyFieldsSent:
            return "too many fields"

    for limit, content_type in itertools.product(
        (1000, 2), ("", "application/x-www-form-urlencoded", "text/plain")
    ):
        headers = {"Content-Type": content_type}
        request = WebhookRequest("POST", "http://testserver/", "/", body, headers)
        try:
            text = body.decode("utf-8")
            if content_type == "application/x-www-form-urlencoded":
                parse_qsl(text, keep_blank_values=True, errors="strict")
            utf8 = True
        except UnicodeDecodeError:
            utf8 = False
        with override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=limit):
            try:
                request.require_utf8()  # never the field limit's error: not its question
                refused = False
            except MalformedPayload:
                refused = True
            assert refused is not utf8
            expected = read(lambda: QueryDict(body.decode("utf-8", errors="replace")))
            assert read(lambda request=request: request.form) == expected


def test_any_error_inside_a_signature_check_is_a_403_and_writes_nothing(client, monkeypatch):
    def broken(self, request):
        raise KeyError("the verifier tripped over its input")

    monkeypatch.setattr(TwilioProvider, "verify", broken)
    response = request(client, "twilio", twilio.DELIVERED)
    assert response.status_code == 403
    assert "KeyError" in response.json()["detail"]
    assert nothing_written()


# -- verified but unreadable: 400, kept for review ---------------------------------------------


def test_deeply_nested_json_verified_by_telnyx_is_400_and_kept(client):
    body = b'{"data": ' * 100 + b"null" + b"}" * 100
    response = request(client, "telnyx", None, transport="raw", body=body)
    assert response.status_code == 400
    assert "nests deeper" in response.json()["detail"]
    assert kept_for_review().sealed.body == body


@pytest.mark.parametrize("value", [["SM1"], {"sid": "SM1"}, True])
@pytest.mark.parametrize("name", ["MessageSid", "MessageStatus", "To", "ErrorCode"])
def test_twilio_json_field_of_the_wrong_type_is_400_and_kept(client, name, value):
    payload = {**without(twilio.DELIVERED, "SmsSid", "SmsStatus"), name: value}
    response = request(client, "twilio", payload, transport="json")
    assert response.status_code == 400, response.content
    assert name in response.json()["detail"]
    assert name in kept_for_review().parse_error


def test_twilio_json_numbers_where_text_belongs_are_read_as_their_digits(client):
    payload = {**twilio.UNDELIVERED_30003, "ErrorCode": 30003, "NumSegments": 2}
    response = request(client, "twilio", payload, transport="json")
    assert response.status_code == 200, response.content
    event = MessageEvent.objects.get()
    assert (event.error_code, event.message.segments) == ("30003", 2)


def test_any_error_while_parsing_a_verified_request_is_400_and_kept(client, monkeypatch, caplog):
    def broken(self, request):
        raise ValueError(f"cannot read {twilio.DELIVERED['To']}")

    monkeypatch.setattr(TwilioProvider, "parse", broken)
    with caplog.at_level(logging.ERROR, logger="delivery.webhooks"):
        response = request(client, "twilio", twilio.DELIVERED)
    assert response.status_code == 400
    assert response.json()["detail"] == "Unreadable request (ValueError)."
    assert kept_for_review().parse_error == "Unreadable request (ValueError)."
    assert "ValueError" in caplog.text and "+1 ••• ••• 5310" in caplog.text  # masked traceback


def test_a_value_the_database_refuses_is_400_and_kept_not_503(client, monkeypatch):
    def refuse(*args, **kwargs):
        raise DataError("value too long for type character varying(64)")

    for storing in ("insert_event", "insert_report_of_new_message"):  # SQLite, PostgreSQL
        monkeypatch.setattr(statements, storing, refuse)
    response = request(client, "twilio", twilio.DELIVERED)
    assert response.status_code == 400
    assert "DataError" in kept_for_review().parse_error


def test_a_database_outage_is_still_503_and_writes_nothing(client, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    for storing in ("insert_event", "insert_report_of_new_message"):  # SQLite, PostgreSQL
        monkeypatch.setattr(statements, storing, down)
    response = request(client, "twilio", twilio.DELIVERED)
    assert response.status_code == 503
    assert nothing_written()


# -- poison callbacks: stored as far as the columns allow, never a 503 -----------------------


def test_overlong_values_are_cut_to_their_columns_with_a_marker(client):
    payload = {
        **twilio.UNDELIVERED_30003,
        "MessageSid": "SM" + "a" * 100,
        "AccountSid": "AC" + "1" * 100,
        "ErrorCode": "3" * 40,
        "From": "f" * 150,
        "ErrorMessage": "e" * 400,
    }
    response = request(client, "twilio", payload, content_type="application/" + "x" * 200)
    assert response.status_code == 200, response.content
    message = Message.objects.get()
    event = message.events.get()
    raw = RawWebhook.objects.get()
    assert len(message.provider_message_id) == 64 and "…" in message.provider_message_id
    assert len(event.error_code) == 32 and len(event.error_detail) == 255
    assert len(message.sender_identity) == 100 and message.sender_identity.endswith("…")
    assert len(raw.account) == 64 and len(raw.content_type) == 128
    assert raw.sealed.body.count(b"a" * 100) == 1  # the request itself, as received


def test_long_ids_that_share_a_prefix_stay_two_messages(client):
    for suffix in ("one", "two"):
        payload = {**twilio.SENT, "MessageSid": "SM" + "a" * 100 + suffix}
        assert request(client, "twilio", payload).status_code == 200
    assert Message.objects.count() == 2
    assert request(client, "twilio", {**twilio.SENT, "MessageSid": "SM" + "a" * 100 + "one"})
    assert Message.objects.count() == 2 and MessageEvent.objects.count() == 2  # a duplicate


@pytest.mark.parametrize("value", ["SM1\x00", "sent\x00"])
def test_nul_bytes_are_dropped_from_stored_text(client, value):
    field = "MessageSid" if value.startswith("SM") else "MessageStatus"
    payload = {**without(twilio.SENT, "SmsSid", "SmsStatus"), field: value}
    assert request(client, "twilio", payload).status_code == 200
    event = MessageEvent.objects.get()
    assert "\x00" not in event.message.provider_message_id + event.raw_status
    assert event.raw_payload[field] == value  # kept, exactly, in the evidence


@pytest.mark.parametrize("segments", ["70000", "-1", "1e400"])
def test_counts_out_of_range_are_dropped(client, segments):
    assert request(client, "twilio", {**twilio.SENT, "NumSegments": segments}).status_code == 200
    assert Message.objects.get().segments is None


def test_nul_nan_and_surrogates_in_json_are_kept_encrypted(client):
    body = json.dumps(telnyx.event("delivered"))[:-1] + ', "x": ["\\u0000", NaN, "\\ud800"]}'
    response = request(client, "telnyx", None, transport="raw", body=body.encode())
    assert response.status_code == 200, response.content
    assert MessageEvent.objects.get().raw_payload["x"][:2] == ["\x00", "NaN"]


# -- nothing the host configures decides -------------------------------------------------------


@pytest.mark.parametrize("accept", ["text/xml", "application/xml", "image/png"])
def test_a_provider_accept_header_never_makes_a_406(client, accept):
    payload = {**twilio.DELIVERED}
    response = request(client, "twilio", payload, headers=(("Accept", accept),))
    assert response.status_code == 200
    response = request(
        client,
        "twilio",
        {"MessageSid": "SM2", "From": "+14155550100", "Body": "STOP"},
        kind="inbound",
        headers=(("Accept", accept),),
    )
    assert response.status_code == 200 and b"<Response/>" in response.content
    assert InboundMessage.objects.count() == 1


@pytest.mark.parametrize(
    "provider, kind, payload",
    [
        ("vonage", "inbound", vonage.inbound_sms("STOP")),
        ("vonage", "status", vonage.DLR_DELIVERED),
        ("twilio", "status", twilio.DELIVERED),
    ],
)
def test_a_get_reads_its_query_as_utf8_whatever_content_type_it_claims(
    client, provider, kind, payload
):
    """Found by the live fuzz: Django decodes request.GET with the body's charset, so a signed
    GET saying "charset=utf-16" lost every parameter and was refused as unsigned."""
    content_type = "application/x-www-form-urlencoded; charset=utf-16"
    response = request(
        client, provider, payload, kind=kind, transport="get", content_type=content_type
    )
    assert response.status_code == 200, response.content
    assert RawWebhook.objects.get().signature_valid is True


def test_a_format_query_parameter_is_ignored(client):
    assert request(client, "twilio", twilio.DELIVERED, query="format=xml").status_code == 200


def test_the_view_sets_every_drf_policy_itself():
    """DRF reads the host's ``REST_FRAMEWORK`` defaults into class attributes at import time,
    so only policies declared on the view itself are safe from them."""
    declared = vars(ProviderWebhookView)
    for policy in (
        "authentication_classes",
        "permission_classes",
        "throttle_classes",
        "parser_classes",
        "renderer_classes",
        "content_negotiation_class",
        "versioning_class",
        "get_exception_handler",
    ):
        assert policy in declared, policy


def test_the_host_exception_handler_does_not_apply(client, settings):
    settings.REST_FRAMEWORK = {
        "EXCEPTION_HANDLER": "tests.test_pipeline_rules.host_exception_handler"
    }
    assert request(client, "twilio", twilio.DELIVERED, signed=False).status_code == 403


def host_exception_handler(exc, context):
    raise AssertionError("the host's exception handler reached a webhook")


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_method_no_provider_uses_is_drf_s_405_and_writes_nothing(client, method):
    """POST and GET skip DRF's dispatch (answered by the view itself); the rest still go
    through it."""
    response = getattr(client, method)("/webhooks/twilio/status/", b"MessageSid=SM1")
    assert response.status_code == 405 and response.json()["detail"]
    assert nothing_written()


def test_options_lists_the_methods_providers_use(client):
    response = client.options("/webhooks/twilio/status/")
    assert response.status_code == 200
    assert {"GET", "POST", "HEAD"} <= {m.strip() for m in response["Allow"].split(",")}


def test_an_error_on_the_view_s_own_path_is_rendered_by_drf(client):
    """POST and GET skip DRF's dispatch: what they raise is still answered by DRF."""
    response = request(client, "twilio", twilio.DELIVERED, signed=False)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "signature" in response.json()["detail"].lower()


def test_a_bug_on_the_view_s_own_path_surfaces_as_itself_while_debugging(settings, monkeypatch):
    """DRF re-raises what it cannot answer; with DEBUG on it first reads the negotiated
    renderer, which the view's own path must have set, or a bug would show as another."""
    settings.DEBUG = True

    def broken(name):
        raise RuntimeError("a bug")

    monkeypatch.setattr("delivery.views.get_provider", broken)
    view = ProviderWebhookView.as_view()
    with pytest.raises(RuntimeError, match="a bug"):
        view(RequestFactory().post("/webhooks/twilio/status/"), provider_name="twilio")


def test_the_answer_follows_the_commit_even_with_atomic_requests():
    """``ATOMIC_REQUESTS`` would commit after the view answered: the view opts out."""
    for path in ("/webhooks/twilio/status/", "/webhooks/twilio/inbound/"):
        assert "default" in resolve(path).func._non_atomic_requests


# -- what receivers are told ------------------------------------------------------------------


def test_an_unmapped_first_report_shows_unknown_but_signals_nothing(
    client, django_capture_on_commit_callbacks
):
    seen = []

    def receiver(sender, previous_status, status, **kwargs):
        seen.append((previous_status, status))

    message_status_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = request(client, "twilio", twilio.callback("partially_delivered"))
        assert response.status_code == 200
        assert Message.objects.get().current_status == Status.UNKNOWN
        assert seen == []  # "unknown" is never announced as a status
        with django_capture_on_commit_callbacks(execute=True):
            request(client, "twilio", twilio.SENT)
        assert seen == [("accepted", "sent")]  # leaving unknown is a change from accepted
    finally:
        message_status_changed.disconnect(receiver)


@pytest.mark.django_db(transaction=True)
def test_a_failing_signal_receiver_never_changes_the_answer(client):
    """Without a transaction around the view, on_commit runs receivers inside ingest(): one that
    raises must not turn a stored callback into a 400 or a second review-queue entry, nor keep
    the other receivers from hearing of it."""
    heard = []

    def broken(sender, **kwargs):
        raise ValueError("the host's receiver is broken")

    def working(sender, status, **kwargs):
        heard.append(status)

    message_status_changed.connect(broken)
    message_status_changed.connect(working)
    try:
        response = request(client, "twilio", twilio.DELIVERED)
    finally:
        message_status_changed.disconnect(broken)
        message_status_changed.disconnect(working)
    assert response.status_code == 200
    assert (RawWebhook.objects.count(), MessageEvent.objects.count()) == (1, 1)
    assert heard == ["delivered"]


def test_a_failing_rejection_receiver_never_changes_the_answer(client):
    from delivery.metrics import webhook_rejected

    def broken(sender, **kwargs):
        raise ValueError("the monitoring hook is broken")

    webhook_rejected.connect(broken)
    try:
        assert request(client, "twilio", twilio.DELIVERED, signed=False).status_code == 403
    finally:
        webhook_rejected.disconnect(broken)
