"""Plivo status callbacks end to end, signed by the plivo SDK's own V3 signer.

Requests are signed with ``plivo.utils.signature_v3`` (``construct_post_url`` /
``construct_get_url`` + ``get_signature_v3``, the functions Plivo's validator itself uses), not by
code of ours. The verifier is also checked against published signatures: plivo-go's
``utils_test.go`` V3 vectors (POST and GET, with and without a query string; made against a Plivo
test server) and the V2 vector every Plivo SDK's tests share (plivo-python
``tests/resources/test_signature.py``).
"""

import base64
import hmac
from datetime import UTC, datetime
from hashlib import sha256
from urllib.parse import urlencode
from uuid import uuid4

import pytest
from django.core.cache import cache, caches
from django.http import QueryDict
from plivo.utils.signature_v3 import construct_get_url, construct_post_url, get_signature_v3

from delivery import registry
from delivery.adapters import WebhookRequest
from delivery.checks import Codes, check_providers
from delivery.error_codes import ErrorInfo
from delivery.exceptions import MalformedPayload, SignatureInvalid
from delivery.lifecycle import ErrorCategory, Status
from delivery.metrics import rejections
from delivery.models import InboundMessage, Message, MessageEvent, RawWebhook
from providers.plivo import PlivoProvider, parse_plivo_time
from providers.plivo_errors import DOCS_URL, PLIVO_ERRORS
from tests.fixtures import plivo as payloads
from tests.provider_contract import ProviderContract

pytestmark = [pytest.mark.plivo, pytest.mark.django_db]

PATH = "/webhooks/plivo/status/"
URL = "http://testserver" + PATH
AUTH_ID = "MAXXXXXXXXXXXXXXXXXX"
TOKEN = "plivo-auth-token-old"
ROTATED = "plivo-auth-token-new"
NONCE = "05429567804466091622"  # the nonce of Plivo's own signature-validation example
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def plivo_enabled(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["plivo"] = {
        "AUTH_ID": AUTH_ID,
        "AUTH_TOKENS": [TOKEN, ROTATED],
    }


def sign(method, url, params, secret=TOKEN, nonce=NONCE):
    """``X-Plivo-Signature-V3`` as Plivo computes it, with the SDK's own functions."""
    # GET: the parameters are in the URL's query string; POST: the form fields.
    get_url = method == "GET"
    base = construct_get_url(url, {}) if get_url else construct_post_url(url, dict(params))
    return get_signature_v3(secret, base.decode(), nonce).decode()


def v3_headers(signature, nonce=NONCE, header="X-Plivo-Signature-V3"):
    return {header: signature, "X-Plivo-Signature-V3-Nonce": nonce}


def post(client, params, url=URL, path=PATH, secret=TOKEN, signed_params=None, **headers):
    signature = sign("POST", url, signed_params if signed_params is not None else params, secret)
    return client.post(
        path, urlencode(params), content_type=FORM, headers={**v3_headers(signature), **headers}
    )


def get(client, params, secret=TOKEN, signed_query=None):
    path = f"{PATH}?{urlencode(params)}"
    signed = f"{PATH}?{urlencode(signed_query)}" if signed_query is not None else path
    signature = sign("GET", "http://testserver" + signed, {}, secret)
    return client.get(path, headers=v3_headers(signature))


class TestPlivoContract(ProviderContract):
    provider = "plivo"
    secret, rotated_secret, wrong_secret = TOKEN, ROTATED, "retired-token"
    sent_word, delivered_word = "sent", "delivered"

    def report(self, word, message_id):
        return payloads.callback(word, uuid=message_id)

    def inbound(self, text, message_id):
        return payloads.incoming(text, uuid=message_id)

    def without_message_id(self, payload):
        return {k: v for k, v in payload.items() if k != "MessageUUID"}

    def send(self, client, payload, *, kind="status", secret=None):
        path = f"/webhooks/plivo/{kind}/"
        return post(
            client, payload, url="http://testserver" + path, path=path, secret=secret or TOKEN
        )

    def send_unsigned(self, client, payload, *, kind="status"):
        return client.post(f"/webhooks/plivo/{kind}/", urlencode(payload), content_type=FORM)

    def send_tampered(self, client, payload, *, kind="status"):
        return post(client, {**payload, "Status": "delivered"}, signed_params=payload)


# -- authenticity ------------------------------------------------------------------------------


def test_comma_separated_tokens_in_settings(client, settings):
    settings.SMS_DELIVERY["PROVIDERS"]["plivo"] = {"AUTH_TOKENS": f"{TOKEN}, {ROTATED}"}
    assert post(client, payloads.SENT, secret=ROTATED).status_code == 200


def test_header_with_several_signatures_verifies_if_any_matches(client):
    # During token rotation Plivo may list one signature per active token, comma-separated.
    other = sign("POST", URL, payloads.SENT, secret="a-token-we-do-not-have")
    mine = sign("POST", URL, payloads.SENT, secret=ROTATED)
    response = client.post(
        PATH, urlencode(payloads.SENT), content_type=FORM, headers=v3_headers(f"{other}, {mine}")
    )
    assert response.status_code == 200


def test_main_account_header_verifies_a_subaccount_callback(client):
    signature = sign("POST", URL, payloads.SENT, secret=TOKEN)
    headers = {
        "X-Plivo-Signature-V3": sign("POST", URL, payloads.SENT, secret="subaccount-token"),
        **v3_headers(signature, header="X-Plivo-Signature-Ma-V3"),
    }
    response = client.post(PATH, urlencode(payloads.SENT), content_type=FORM, headers=headers)
    assert response.status_code == 200


def test_v3_covers_the_body(client):
    tampered = {**payloads.UNDELIVERED_30, "Status": "delivered", "ErrorCode": ""}
    response = post(client, tampered, signed_params=payloads.UNDELIVERED_30)
    assert response.status_code == 403
    assert not RawWebhook.objects.exists()


def test_v3_nonce_is_required(client):
    signature = sign("POST", URL, payloads.SENT)
    response = client.post(
        PATH,
        urlencode(payloads.SENT),
        content_type=FORM,
        headers={"X-Plivo-Signature-V3": signature},
    )
    assert response.status_code == 403
    assert "Nonce" in response.json()["detail"]


def test_signature_for_another_url_is_rejected_and_counted(client, still_clock):
    before = rejections("signature_invalid", "plivo")
    response = post(client, payloads.SENT, url="http://testserver/other/")
    assert response.status_code == 403
    assert rejections("signature_invalid", "plivo") == before + 1
    assert not RawWebhook.objects.exists()


def test_query_string_of_the_callback_url_is_signed(client):
    path = PATH + "?tenant=acme&flow=otp"
    assert post(client, payloads.SENT, url="http://testserver" + path, path=path).status_code == 200
    assert post(client, payloads.DELIVERED, url=URL, path=path).status_code == 403


def test_base_url_behind_a_tls_proxy(client, settings):
    settings.SMS_DELIVERY["WEBHOOK_BASE_URL"] = "https://hooks.example.com"
    assert post(client, payloads.SENT, url="https://hooks.example.com" + PATH).status_code == 200
    assert post(client, payloads.DELIVERED, url=URL).status_code == 403


def test_get_callback_signed_over_its_query_string(client):
    response = get(client, payloads.DELIVERED)
    assert response.status_code == 200, response.content
    event = MessageEvent.objects.get()
    assert (event.status, event.raw_payload["Sequence"]) == (Status.DELIVERED, "3")
    assert RawWebhook.objects.get().method == "GET"


def test_get_callback_with_a_changed_query_is_rejected(client):
    tampered = {**payloads.UNDELIVERED_30, "Status": "delivered"}
    response = get(client, tampered, signed_query=payloads.UNDELIVERED_30)
    assert response.status_code == 403
    assert not RawWebhook.objects.exists()


def test_v2_headers_with_a_wrong_signature_are_403(client):
    headers = {"X-Plivo-Signature-V2": "bm90IGEgc2lnbmF0dXJl", "X-Plivo-Signature-V2-Nonce": "1"}
    response = client.post(PATH, urlencode(payloads.SENT), content_type=FORM, headers=headers)
    assert response.status_code == 403
    assert not RawWebhook.objects.exists()


# Published V3 vectors (plivo/plivo-go utils_test.go, TestValidateSignatureV3Pass1-4), checked
# through our verify(): the requests are rebuilt as Plivo sends them (GET: every parameter in the
# query string; POST: a form body).
GO_BASE = "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml"
GO_TOKEN = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4"
GO_NONCE = "31627761595286130198"
GO_PARAMS = {
    "Direction": "outbound",
    "From": "19792014278",
    "ALegUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "CallStatus": "in-progress",
    "BillRate": "0.002",
    "ParentAuthID": "MANWVLYTK4ZWU1YTY4QA",
    "To": "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
    "ALegRequestUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "CallUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "RequestUUID": "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36",
    "SIP-H-To": "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
    "SessionStart": "2020-04-08 11:34:33.238707",
    "Event": "StartApp",
}
GO_VECTORS = [
    ("POST", GO_BASE + "/?a=b&c=d", "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c="),
    ("GET", GO_BASE + "/?a=b&c=d", "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ="),
    ("POST", GO_BASE, "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0="),
    ("GET", GO_BASE, "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc="),
]


def go_request(method, url, signature, params=GO_PARAMS):
    headers = {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": GO_NONCE}
    if method == "GET":
        url = url + ("&" if "?" in url else "?") + urlencode(params)
        query = QueryDict(url.partition("?")[2])
        return WebhookRequest(method, url, "/", b"", headers, query)
    body = urlencode(params).encode()
    headers["Content-Type"] = FORM
    return WebhookRequest(method, url, "/", body, headers)


@pytest.mark.parametrize("method, url, signature", GO_VECTORS)
def test_published_v3_vectors_verify(method, url, signature):
    provider = PlivoProvider({"AUTH_TOKENS": ["not-it", GO_TOKEN]})
    provider.verify(go_request(method, url, signature))
    with pytest.raises(SignatureInvalid):
        provider.verify(go_request(method, url, signature, {**GO_PARAMS, "CallStatus": "busy"}))
    with pytest.raises(SignatureInvalid):
        PlivoProvider({"AUTH_TOKENS": "not-it"}).verify(go_request(method, url, signature))


# The V2 vector shared by plivo-python, plivo-go, plivo-node, plivo-ruby, plivo-php, plivo-java
# and plivo-dotnet tests: url https://answer.url, nonce 12345, token my_auth_token.
V2_URL = "https://answer.url"
V2_SIGNATURE = "ehV3IKhLysWBxC1sy8INm0qGoQYdYsHwuoKjsX7FsXc="
V2_TOKEN = "my_auth_token"


def v2_request(url=V2_URL, header="X-Plivo-Signature-V2", **extra_headers):
    headers = {header: V2_SIGNATURE, "X-Plivo-Signature-V2-Nonce": "12345", **extra_headers}
    return WebhookRequest("POST", url, "/", b"", headers)


@pytest.mark.parametrize("header", ["X-Plivo-Signature-V2", "X-Plivo-Signature-Ma-V2"])
def test_published_v2_vector_verifies_when_v2_is_accepted(header):
    provider = PlivoProvider({"AUTH_TOKENS": ["old", V2_TOKEN], "ACCEPT_V2_SIGNATURES": True})
    provider.verify(v2_request(header=header))
    provider.verify(v2_request(header=header))  # a redelivery of the same request
    with pytest.raises(SignatureInvalid):
        PlivoProvider({"AUTH_TOKENS": "my_auth_tokens", "ACCEPT_V2_SIGNATURES": True}).verify(
            v2_request(header=header)
        )


def test_v2_is_refused_by_default():
    provider = PlivoProvider({"AUTH_TOKENS": V2_TOKEN})
    with pytest.raises(SignatureInvalid, match="V2 is not accepted"):
        provider.verify(v2_request())


def test_a_failing_v3_signature_never_falls_back_to_a_valid_v2_one():
    provider = PlivoProvider({"AUTH_TOKENS": V2_TOKEN})
    request = v2_request(
        **{"X-Plivo-Signature-V3": V2_SIGNATURE, "X-Plivo-Signature-V3-Nonce": "12345"}
    )
    with pytest.raises(SignatureInvalid, match="V3"):
        provider.verify(request)


def test_no_token_configured_rejects_everything():
    with pytest.raises(SignatureInvalid, match="No Plivo auth token"):
        PlivoProvider({}).verify(v2_request())


# -- statuses, errors, times ---------------------------------------------------------------------

STATUS_TABLE = {
    "queued": Status.ACCEPTED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "read": Status.READ,
    "rejected": Status.REJECTED,
    "received": Status.UNKNOWN,  # an inbound state: never expected in a status callback
    "teleported": Status.UNKNOWN,  # a status Plivo might add tomorrow
}


@pytest.mark.parametrize("raw, expected", STATUS_TABLE.items())
def test_every_documented_status_maps(client, raw, expected):
    assert post(client, payloads.callback(raw)).status_code == 200
    event = MessageEvent.objects.get()
    assert (event.raw_status, event.status) == (raw, expected)
    assert Message.objects.get().needs_review == (expected == Status.UNKNOWN)


def test_observed_queued_callback(client):
    assert post(client, payloads.QUEUED).status_code == 200
    event = MessageEvent.objects.get()
    assert event.status == Status.ACCEPTED
    assert event.provider_occurred_at == datetime(2026, 11, 22, 14, 36, 1, 223456, tzinfo=UTC)
    assert event.error_code == ""


def test_error_code_maps_to_a_category(client):
    post(client, payloads.UNDELIVERED_30)
    event = MessageEvent.objects.get()
    assert (event.error_code, event.error_category) == ("30", ErrorCategory.CARRIER_FILTERING)
    message = Message.objects.get()
    assert (message.current_status, message.error_code) == (Status.UNDELIVERED, "30")


@pytest.mark.parametrize("value", ["", "0", "000"])
def test_success_codes_are_no_error(client, value):
    post(client, payloads.callback("delivered", ErrorCode=value))
    assert (MessageEvent.objects.get().error_code, Message.objects.get().error_category) == ("", "")


def test_each_status_is_dated_by_its_own_stage_time(client):
    post(client, payloads.SENT)
    post(client, payloads.DELIVERED)
    post(client, payloads.FAILED_900)  # failed has no time of its own: the latest stage time
    times = dict(MessageEvent.objects.values_list("raw_status", "provider_occurred_at"))
    assert times == {
        "sent": datetime(2026, 11, 22, 14, 36, 2, 1234, tzinfo=UTC),
        "delivered": datetime(2026, 11, 22, 14, 36, 9, 654321, tzinfo=UTC),
        "failed": datetime(2026, 11, 22, 14, 36, 1, 223456, tzinfo=UTC),
    }


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-11-22 14:36:09.654321", datetime(2026, 11, 22, 14, 36, 9, 654321, tzinfo=UTC)),
        ("2026-11-22 14:36:09", datetime(2026, 11, 22, 14, 36, 9, tzinfo=UTC)),
        ("2026-11-22 20:06:09.5+05:30", datetime(2026, 11, 22, 14, 36, 9, 500000, tzinfo=UTC)),
        ("", None),
        ("2026-13-01 00:00:00", None),
        ("yesterday", None),
    ],
)
def test_parse_plivo_time(value, expected):
    assert parse_plivo_time(value) == expected


def test_unparseable_time_is_kept_raw_and_does_not_break_parsing(client):
    payload = payloads.callback("delivered", DeliveryReportTime="not-a-time", BrandNewField="42")
    assert post(client, payload).status_code == 200
    event = MessageEvent.objects.get()
    assert event.raw_payload["BrandNewField"] == "42"
    assert event.raw_payload["DeliveryReportTime"] == "not-a-time"
    # Falls back to the latest stage time that parses.
    assert event.provider_occurred_at == datetime(2026, 11, 22, 14, 36, 2, 1234, tzinfo=UTC)


# -- dedupe, order, summary ----------------------------------------------------------------------


def test_a_redelivery_by_get_is_the_same_report(client):
    assert post(client, payloads.DELIVERED).status_code == 200
    assert get(client, payloads.DELIVERED).status_code == 200
    assert MessageEvent.objects.get().duplicate_count == 1


def test_sequence_tells_two_reports_apart(client):
    post(client, payloads.callback("undelivered", ErrorCode="80", Sequence="3"))
    post(client, payloads.callback("undelivered", ErrorCode="80", Sequence="4"))
    assert sorted(e.dedupe_key[-6:] for e in MessageEvent.objects.all()) == [":seq=3", ":seq=4"]


def test_callback_before_the_message_exists_fills_in_the_summary(client):
    assert post(client, payloads.FAILED_900).status_code == 200
    message = Message.objects.get()
    assert message.provider == "plivo"
    assert message.provider_message_id == payloads.FAILED_900["MessageUUID"]
    assert (message.current_status, message.error_code) == (Status.FAILED, "900")
    assert message.error_category == ErrorCategory.ACCOUNT_BILLING
    assert (message.destination_country, message.segments) == ("US", 2)
    assert message.sender_identity == payloads.FROM
    assert message.recipient == "+14155550123"  # Plivo's "14155550123", made E.164
    assert Message.objects.for_recipient("(415) 555-0123", "US").get() == message


def test_whatsapp_read_after_delivered(client):
    post(client, payloads.WHATSAPP_READ)
    post(client, payloads.WHATSAPP_DELIVERED)
    message = Message.objects.get()
    assert message.current_status == Status.READ
    read = MessageEvent.objects.get(status=Status.READ)
    assert read.raw_payload["ConversationOrigin"] == "utility"


def test_raw_request_has_no_account(client):
    post(client, payloads.SENT)
    assert RawWebhook.objects.get().account == ""


# -- malformed ---------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["MessageUUID", "Status"])
def test_signed_but_missing_field_is_400_and_kept_for_review(client, missing):
    payload = {k: v for k, v in payloads.SENT.items() if k != missing}
    response = post(client, payload)
    assert response.status_code == 400
    assert RawWebhook.objects.get().parse_error == f"{missing} is missing."
    assert not MessageEvent.objects.exists()


def test_signed_but_badly_encoded_is_400_and_kept_for_review(client):
    body = urlencode(payloads.SENT) + "&Text=%FF%FE"
    signature = sign("POST", URL, dict(QueryDict(body).lists()))  # as Django decodes it
    response = client.post(PATH, body, content_type=FORM, headers=v3_headers(signature))
    assert response.status_code == 400
    assert "UTF-8" in RawWebhook.objects.get().parse_error


def test_parse_raises_malformed_payload_directly():
    request = WebhookRequest("POST", URL, PATH, b"Status=sent", {"Content-Type": FORM})
    with pytest.raises(MalformedPayload):
        PlivoProvider({}).parse(request)


# -- error catalogue and configuration -----------------------------------------------------------

# Codes confirmed on Plivo's pages (table, blog, support articles, FAQ) plus the three observed.
CATALOGUE = {
    "10": ErrorCategory.CARRIER_FILTERING,
    "20": ErrorCategory.PROVIDER_OUTAGE,
    "30": ErrorCategory.CARRIER_FILTERING,
    "40": ErrorCategory.SENDER_NOT_REGISTERED,
    "50": ErrorCategory.INVALID_NUMBER,
    "60": ErrorCategory.CARRIER_FILTERING,
    "70": ErrorCategory.INVALID_NUMBER,
    "80": ErrorCategory.UNREACHABLE_HANDSET,
    "90": ErrorCategory.PROVIDER_OUTAGE,
    "100": ErrorCategory.CARRIER_FILTERING,
    "110": ErrorCategory.CHANNEL_POLICY,
    "200": ErrorCategory.OPT_OUT,
    "201": ErrorCategory.CHANNEL_POLICY,
    "300": ErrorCategory.PROVIDER_OUTAGE,
    "420": ErrorCategory.UNREACHABLE_HANDSET,
    "450": ErrorCategory.ACCOUNT_BILLING,
    "900": ErrorCategory.ACCOUNT_BILLING,
    "910": ErrorCategory.ACCOUNT_BILLING,
    "1000": ErrorCategory.UNKNOWN,
}


def test_catalogue_covers_exactly_the_known_codes():
    assert {code: info.category for code, info in PLIVO_ERRORS.entries.items()} == CATALOGUE
    for info in PLIVO_ERRORS.entries.values():
        assert info.title and info.note.endswith((".", ".)")) and info.next_step.endswith(".")
    unconfirmed = {
        code for code, info in PLIVO_ERRORS.entries.items() if "unconfirmed" in info.title
    }
    assert unconfirmed == {"300", "420", "910"}


def test_unlisted_code_falls_back_to_unknown_with_the_docs_page():
    info = PLIVO_ERRORS.lookup("130")
    assert isinstance(info, ErrorInfo) and info.category == ErrorCategory.UNKNOWN
    assert DOCS_URL in info.next_step
    assert PLIVO_ERRORS.lookup("") is None


def test_registry_error_info():
    assert registry.error_info("plivo", "200").category == ErrorCategory.OPT_OUT


def test_configuration_errors():
    assert PlivoProvider({}).missing_credentials() == (
        "has no AUTH_TOKENS; every Plivo callback would be rejected"
    )
    assert PlivoProvider({"AUTH_ID": AUTH_ID, "AUTH_TOKENS": "a,b"}).configuration_errors() == []
    swapped = PlivoProvider({"AUTH_ID": "a-token-value", "AUTH_TOKENS": [AUTH_ID]})
    assert swapped.configuration_errors() == [
        "has an Auth ID (MA…/SA…) in AUTH_TOKENS; it needs the Auth Token shown next to it",
        "has AUTH_ID 'a-to'…, which is not a Plivo Auth ID (MA…/SA…)",
    ]


# -- V2, opted into: a nonce is good for one request ------------------------------------------


def v2_post(client, params, nonce, secret=TOKEN, path=PATH):
    """POST with V2 headers only. V2 = Base64(HMAC-SHA256(token, URL without query + nonce));
    the SDK has a V2 verifier but no signer (the published vector above checks the verifier)."""
    url = "http://testserver" + path
    digest = hmac.new(secret.encode(), (url + nonce).encode(), sha256).digest()
    headers = {
        "X-Plivo-Signature-V2": base64.b64encode(digest).decode(),
        "X-Plivo-Signature-V2-Nonce": nonce,
    }
    return client.post(path, urlencode(params), content_type=FORM, headers=headers)


@pytest.fixture
def v2_accepted(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["plivo"]["ACCEPT_V2_SIGNATURES"] = True
    cache.clear()
    yield
    cache.clear()


def test_v2_only_requests_are_refused_by_default(client):
    assert v2_post(client, payloads.SENT, uuid4().hex).status_code == 403
    assert not RawWebhook.objects.exists()


def test_a_v2_signature_replayed_with_another_body_is_refused(client, v2_accepted):
    nonce = uuid4().hex
    assert v2_post(client, payloads.SENT, nonce).status_code == 200
    assert v2_post(client, payloads.SENT, nonce).status_code == 200  # Plivo's redelivery
    forged = payloads.callback("undelivered", ErrorCode="200")
    response = v2_post(client, forged, nonce)
    assert response.status_code == 403
    assert "replay" in response.json()["detail"]
    assert MessageEvent.objects.get().duplicate_count == 1
    assert RawWebhook.objects.count() == 2
    assert v2_post(client, forged, uuid4().hex).status_code == 200  # a fresh nonce verifies


def test_a_forged_stop_with_a_replayed_v2_signature_is_refused(client, v2_accepted):
    nonce = uuid4().hex
    inbound = "/webhooks/plivo/inbound/"
    assert v2_post(client, payloads.incoming("hi"), nonce, path=inbound).status_code == 200
    stop = payloads.incoming("STOP", uuid="8a5e6c62-0000-11ef-9b0e-0242ac110002")
    assert v2_post(client, stop, nonce, path=inbound).status_code == 403
    assert not InboundMessage.objects.filter(keyword="STOP").exists()


def test_a_cache_outage_during_a_v2_check_is_503_and_writes_nothing(
    client, v2_accepted, monkeypatch
):
    def down(*args, **kwargs):
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(caches["default"], "add", down)
    assert v2_post(client, payloads.SENT, uuid4().hex).status_code == 503
    assert not RawWebhook.objects.exists()


def test_check_warns_while_v2_is_accepted(sms_delivery_settings):
    assert not [w for w in check_providers() if w.id == Codes.WEAKENED_VERIFICATION]
    sms_delivery_settings["PROVIDERS"]["plivo"]["ACCEPT_V2_SIGNATURES"] = True
    [warning] = [w for w in check_providers() if w.id == Codes.WEAKENED_VERIFICATION]
    assert "do not cover the body" in warning.msg
    assert "LocMemCache" in warning.msg  # the test settings' cache is per process
