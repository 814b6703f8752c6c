"""Twilio status callbacks end to end, signed by the twilio SDK as Twilio signs them."""

import json
from datetime import UTC, datetime
from hashlib import sha256
from urllib.parse import urlencode

import hypothesis
import pytest
from django.db import OperationalError
from django.http import QueryDict
from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import HMAC_SHA1, HMAC_SHA256, RequestValidator

from delivery.adapters import WebhookRequest
from delivery.exceptions import SignatureInvalid
from delivery.lifecycle import ErrorCategory, Status
from delivery.metrics import rejections
from delivery.models import Message, MessageEvent, RawWebhook
from providers.twilio import TwilioProvider, _signed, parse_raw_dlr_done_date
from tests.fixtures import twilio as payloads
from tests.provider_contract import ProviderContract

pytestmark = [pytest.mark.twilio, pytest.mark.django_db]

PATH = "/webhooks/twilio/status/"
URL = "http://testserver" + PATH
TOKEN = "12345"
FORM = "application/x-www-form-urlencoded"


def sign(params, url=URL, secret=TOKEN, algorithm=None):
    return RequestValidator(secret).compute_signature(url, params, algorithm)


def post(client, params, url=URL, path=PATH, secret=TOKEN, **headers):
    signature = sign(params, url, secret)
    return client.post(
        path,
        urlencode(params),
        content_type=FORM,
        headers={"X-Twilio-Signature": signature, **headers},
    )


class TestTwilioContract(ProviderContract):
    provider = "twilio"
    secret, rotated_secret, wrong_secret = TOKEN, "rotated-token-67890", "not-the-token"
    sent_word, delivered_word = "sent", "delivered"

    def report(self, word, message_id):
        return payloads.callback(word, sid=message_id)

    def inbound(self, text, message_id):
        return payloads.incoming(text, sid=message_id)

    def without_message_id(self, payload):
        return {k: v for k, v in payload.items() if k not in ("MessageSid", "SmsSid")}

    def send(self, client, payload, *, kind="status", secret=None):
        path = f"/webhooks/twilio/{kind}/"
        return post(
            client, payload, url="http://testserver" + path, path=path, secret=secret or TOKEN
        )

    def send_unsigned(self, client, payload, *, kind="status"):
        return client.post(f"/webhooks/twilio/{kind}/", urlencode(payload), content_type=FORM)

    def send_tampered(self, client, payload, *, kind="status"):
        forged = {**payload, "MessageStatus": "delivered", "SmsStatus": "delivered"}
        signature = sign(payload)
        return client.post(
            PATH, urlencode(forged), content_type=FORM, headers={"X-Twilio-Signature": signature}
        )


def test_subaccount_callbacks_use_the_subaccount_token(client, settings):
    sub = "AC11111111111111111111111111111111"
    settings.SMS_DELIVERY["PROVIDERS"]["twilio"] = {
        **settings.SMS_DELIVERY["PROVIDERS"]["twilio"],
        "SUBACCOUNTS": {sub: ["sub-token"]},
    }
    payload = payloads.callback("sent", AccountSid=sub)
    assert post(client, payload, secret="sub-token").status_code == 200
    assert post(client, payloads.callback("delivered", AccountSid=sub)).status_code == 403
    assert RawWebhook.objects.get().account == sub


def test_shared_key_hmac_sha256_signatures(client, settings):
    settings.SMS_DELIVERY["PROVIDERS"]["twilio"] = {
        **settings.SMS_DELIVERY["PROVIDERS"]["twilio"],
        "SHARED_KEYS": {"webhooks_sharedkey_1": "shared-secret"},
    }
    header = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"
    signature = sign(payloads.DELIVERED, secret="shared-secret", algorithm="HMAC_SHA256")
    response = client.post(
        PATH,
        urlencode(payloads.DELIVERED),
        content_type=FORM,
        headers={"X-Twilio-Signature": signature, "X-Twilio-Webhooks-Signature-Settings": header},
    )
    assert response.status_code == 200
    # The auth token is not accepted in place of the shared key, nor an unknown key id.
    for secret, key in [(TOKEN, "webhooks_sharedkey_1"), ("shared-secret", "other")]:
        response = client.post(
            PATH,
            urlencode(payloads.SENT),
            content_type=FORM,
            headers={
                "X-Twilio-Signature": sign(payloads.SENT, secret=secret, algorithm="HMAC_SHA256"),
                "X-Twilio-Webhooks-Signature-Settings": f"key={key},algorithm=HMAC_SHA256",
            },
        )
        assert response.status_code == 403


def test_signature_for_another_url_is_rejected_and_counted(client, still_clock):
    before = rejections("signature_invalid", "twilio")
    response = post(client, payloads.SENT, url="http://testserver/other/")
    assert response.status_code == 403
    assert rejections("signature_invalid", "twilio") == before + 1
    assert not RawWebhook.objects.exists()


def test_query_string_is_part_of_the_signed_url(client):
    path = PATH + "?tenant=acme&flow=otp"
    assert post(client, payloads.SENT, url="http://testserver" + path, path=path).status_code == 200
    assert post(client, payloads.DELIVERED, url=URL, path=path).status_code == 403


def test_base_url_behind_a_tls_proxy_with_explicit_port(client, settings):
    settings.SMS_DELIVERY["WEBHOOK_BASE_URL"] = "https://hooks.example.com"
    public = "https://hooks.example.com" + PATH
    assert post(client, payloads.SENT, url=public).status_code == 200
    # Twilio keeps an explicit port for SMS callbacks over HTTPS; the SDK accepts both forms.
    assert (
        post(client, payloads.DELIVERED, url="https://hooks.example.com:443" + PATH).status_code
        == 200
    )
    assert post(client, payloads.UNDELIVERED_30003, url=URL).status_code == 403


def test_forwarded_headers_when_django_is_told_to_trust_them(client, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    settings.ALLOWED_HOSTS = ["hooks.example.com", "testserver"]
    response = post(
        client,
        payloads.SENT,
        url="https://hooks.example.com" + PATH,
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hooks.example.com"},
    )
    assert response.status_code == 200


def test_json_body_signed_with_body_sha256(client):
    body = json.dumps(payloads.DELIVERED)
    path = f"{PATH}?bodySHA256={sha256(body.encode()).hexdigest()}"
    signature = sign({}, url="http://testserver" + path)
    headers = {"X-Twilio-Signature": signature}
    assert (
        client.post(path, body, content_type="application/json", headers=headers).status_code == 200
    )
    tampered = body.replace("delivered", "failed")
    response = client.post(path, tampered, content_type="application/json", headers=headers)
    assert response.status_code == 403


def test_a_json_body_is_checked_over_the_bytes_received(client):
    """bodySHA256 is the hash of the bytes Twilio sent. A signed body that is not UTF-8 is
    kept for review as unreadable, not refused as forged (found by scripts/fuzz-live.sh: the
    SDK hashes the body as text, whose UTF-8 is other bytes)."""
    body = b"\xff\xfeS\x00T\x00O\x00P\x00"  # UTF-16
    path = f"{PATH}?bodySHA256={sha256(body).hexdigest()}"
    headers = {"X-Twilio-Signature": sign({}, url="http://testserver" + path)}
    response = client.post(path, body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    kept = RawWebhook.objects.get()
    assert "UTF-8" in kept.parse_error and kept.sealed.body == body
    assert MessageEvent.objects.count() == 0


@pytest.mark.parametrize(
    "query",
    [
        "bodySHA256=",
        "bodySHA256={other}&bodySHA256={right}",
        "bodySHA256=&bodySHA256={other}&bodySHA256={right}",
    ],
)
def test_a_json_body_without_its_hash_first_in_the_signed_url_is_refused(client, query):
    """A blank bodySHA256 covers no body (the SDK's ``validate`` failed on it with a
    TypeError); of several, the first not blank is the one the SDK reads. Each refused saying
    why."""
    body = json.dumps(payloads.DELIVERED)
    right, other = sha256(body.encode()).hexdigest(), sha256(b"other").hexdigest()
    path = f"{PATH}?{query.format(right=right, other=other)}"
    headers = {"X-Twilio-Signature": sign({}, url="http://testserver" + path)}
    response = client.post(path, body, content_type="application/json", headers=headers)
    assert response.status_code == 403, response.json()
    assert "bodySHA256" in response.json()["detail"]
    assert RawWebhook.objects.count() == MessageEvent.objects.count() == 0


@given(
    body=st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
    claimed=st.sampled_from(["right", "other", "upper", "spaced", "second"]),
)
def test_a_json_body_hash_is_accepted_as_the_sdk_accepts_it(body, claimed):
    """Over any UTF-8 body (all Twilio sends): what the SDK's ``validate`` says of the body as
    text, the check over its bytes says too."""
    right = sha256(body.encode()).hexdigest()
    other = sha256(b"x").hexdigest()
    query = (
        "bodySHA256="
        + {
            "right": right,
            "other": other,
            "upper": right.upper(),
            "spaced": "+" + right,
            "second": f"&bodySHA256={right}",  # after a blank one: the SDK reads this one
        }[claimed]
    )
    url = f"{URL}?{query}"
    signature = sign({}, url)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/json"}
    request = WebhookRequest(
        "POST", url, f"{PATH}?{query}", body.encode(), headers, QueryDict(query)
    )
    try:
        TwilioProvider({"AUTH_TOKENS": TOKEN}).verify(request)
        accepted = True
    except SignatureInvalid:
        accepted = False
    sdk = RequestValidator(TOKEN).validate(url, body, signature)
    assert accepted == sdk == (claimed in ("right", "second"))


STATUS_TABLE = {
    "accepted": Status.ACCEPTED,
    "scheduled": Status.ACCEPTED,
    "queued": Status.ACCEPTED,
    "sending": Status.ACCEPTED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "canceled": Status.FAILED,
    "partially_delivered": Status.UNKNOWN,
    "receiving": Status.UNKNOWN,
    "received": Status.UNKNOWN,
    "teleported": Status.UNKNOWN,  # a status Twilio might add tomorrow
}


@pytest.mark.parametrize("raw, expected", STATUS_TABLE.items())
def test_every_documented_status_maps(client, raw, expected):
    assert post(client, payloads.callback(raw)).status_code == 200
    event = MessageEvent.objects.get()
    assert (event.raw_status, event.status) == (raw, expected)
    assert Message.objects.get().needs_review == (expected == Status.UNKNOWN)


def test_sms_status_is_the_fallback_for_message_status(client):
    payload = {k: v for k, v in payloads.SENT.items() if k != "MessageStatus"}
    assert post(client, payload).status_code == 200
    assert MessageEvent.objects.get().status == Status.SENT


def test_a_retry_is_one_event_and_its_idempotency_token_is_kept_as_evidence(client):
    """Twilio marks its retries with I-Twilio-Idempotency-Token; the raw request keeps it."""
    for _ in range(3):
        response = post(client, payloads.DELIVERED, **{"I-Twilio-Idempotency-Token": "tok-1"})
        assert response.status_code == 200
    assert MessageEvent.objects.get().duplicate_count == 2
    assert RawWebhook.objects.count() == 3
    assert RawWebhook.objects.first().sealed.headers["I-Twilio-Idempotency-Token"] == "tok-1"


def test_callback_before_the_message_exists_fills_in_the_summary(client):
    assert post(client, payloads.FAILED_30001).status_code == 200
    message = Message.objects.get()
    assert message.provider_message_id == payloads.FAILED_30001["MessageSid"]
    assert (message.current_status, message.error_code) == (Status.FAILED, "30001")
    assert message.error_category == ErrorCategory.PROVIDER_OUTAGE
    assert (message.destination_country, message.segments) == ("US", 1)
    assert message.sender_identity == "+15017122661"
    assert Message.objects.for_recipient("(555) 867-5310", "US").get() == message


def test_error_code_and_carrier_time_are_kept(client):
    post(client, payloads.UNDELIVERED_30003)
    event = MessageEvent.objects.get()
    assert (event.error_code, event.error_category) == ("30003", ErrorCategory.UNREACHABLE_HANDSET)
    assert event.provider_occurred_at == datetime(2026, 11, 22, 14, 37, tzinfo=UTC)


def test_unknown_fields_are_kept_and_do_not_break_parsing(client):
    payload = payloads.callback("sent", BrandNewField="42", RawDlrDoneDate="not-a-date")
    assert post(client, payload).status_code == 200
    event = MessageEvent.objects.get()
    assert event.raw_payload["BrandNewField"] == "42"
    assert event.provider_occurred_at is None


def test_whatsapp_read_and_window_error(client):
    post(client, payloads.WHATSAPP_FAILED_63016)
    post(client, payloads.WHATSAPP_READ)
    message = Message.objects.get()
    assert message.sender_identity == "whatsapp:+14155238886"
    assert message.current_status == Status.READ
    failed = MessageEvent.objects.get(status=Status.FAILED)
    assert failed.error_category == ErrorCategory.CHANNEL_POLICY
    assert failed.error_detail.startswith("Failed to send freeform message")
    assert message.recipient == "+15558675310"


def test_signed_but_badly_encoded_is_400_and_kept_for_review(client):
    body = urlencode(payloads.SENT) + "&Body=%FF%FE"
    from django.http import QueryDict

    signature = sign(QueryDict(body))  # what Twilio signed, as Django decodes it
    response = client.post(PATH, body, content_type=FORM, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 400
    assert "UTF-8" in RawWebhook.objects.get().parse_error
    assert b"%FF%FE" in RawWebhook.objects.get().sealed.body


def test_oversized_body_is_413_and_writes_nothing(client, settings):
    settings.SMS_DELIVERY["MAX_BODY_BYTES"] = 1024
    response = post(client, payloads.callback("sent", Padding="x" * 2000))
    assert response.status_code == 413
    assert not RawWebhook.objects.exists()


def test_database_down_is_503_and_nothing_partial(client, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr("delivery.ingest._fold_into_summary", down)
    response = post(client, payloads.DELIVERED)
    assert response.status_code == 503
    assert not RawWebhook.objects.exists() and not MessageEvent.objects.exists()


def test_head_probe_and_missing_trailing_slash(client):
    assert client.head(PATH).status_code == 200
    no_slash = PATH.rstrip("/")
    response = post(client, payloads.SENT, url="http://testserver" + no_slash, path=no_slash)
    assert response.status_code == 200


def test_success_response_shape(client):
    assert post(client, payloads.SENT).json() == {"success": True, "processed": 1, "new": 1}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2611221437", datetime(2026, 11, 22, 14, 37, tzinfo=UTC)),
        ("", None),
        ("26132500", None),
        ("261201120", None),  # strptime would read nine digits as 2026-12-01 12:00
        ("26121120", None),
        ("2612011260", None),
        (" 2612011200", None),
    ],
)
def test_raw_dlr_done_date(value, expected):
    assert parse_raw_dlr_done_date(value) == expected


def test_configuration_errors_name_the_missing_token():
    assert "AUTH_TOKENS" in TwilioProvider({}).missing_credentials()
    assert TwilioProvider({"AUTH_TOKENS": "a,b"}).missing_credentials() is None
    assert TwilioProvider({"SUBACCOUNTS": {"AC1": "t"}}).missing_credentials() is None


# -- GET callbacks (a number or service can be set to call with GET) ---------------------------


def get(client, params, path=PATH, secret=TOKEN, signed_query=None):
    """A GET callback as Twilio signs it: the full URL with its query string, nothing else."""
    query = urlencode(signed_query if signed_query is not None else params)
    signature = sign({}, f"http://testserver{path}?{query}", secret)
    return client.get(f"{path}?{urlencode(params)}", headers={"X-Twilio-Signature": signature})


def test_get_callback_is_verified_over_its_url_and_stored(client):
    assert get(client, payloads.SENT).status_code == 200
    assert get(client, payloads.DELIVERED).status_code == 200
    message = Message.objects.get()
    assert message.current_status == Status.DELIVERED
    assert RawWebhook.objects.filter(method="GET").count() == 2


def test_get_callback_with_a_changed_query_is_rejected(client):
    forged = payloads.callback("delivered", sid="SM" + "f" * 32)
    response = get(client, forged, signed_query=payloads.SENT)
    assert response.status_code == 403
    assert not RawWebhook.objects.exists()


def test_get_callback_body_is_never_read():
    """A GET's signature covers its URL only: a body sent along is not what it reports."""
    provider = TwilioProvider({"AUTH_TOKENS": TOKEN})
    query = urlencode(payloads.SENT)
    url = f"{URL}?{query}"
    body = json.dumps(payloads.DELIVERED).encode()
    request = WebhookRequest(
        "GET",
        url,
        f"{PATH}?{query}",
        body,
        {"X-Twilio-Signature": sign({}, url), "Content-Type": "application/json"},
        QueryDict(query),
    )
    provider.verify(request)
    assert provider.parse(request)[0].raw_status == "sent"


def test_get_callback_with_an_unreadable_body_is_still_read_from_its_url(client):
    query = urlencode(payloads.SENT)
    signature = sign({}, f"{URL}?{query}")
    response = client.generic(
        "GET",
        f"{PATH}?{query}",
        b"\xff\xfe",
        content_type=FORM,
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 200, response.content
    assert Message.objects.get().current_status == Status.SENT


_HOSTS = st.sampled_from(["hooks.example.com", "hooks.example.com:443", "hooks.example.com:8443"])
_PARAMS = st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=4)


@hypothesis.settings(max_examples=200)
@given(
    scheme=st.sampled_from(["http", "https"]),
    called=_HOSTS,
    signed=_HOSTS,
    query=st.sampled_from(["", "?tenant=acme", "?", "?a=1#", "#", ";p"]),
    upper=st.booleans(),
    params=_PARAMS,
    sent=_PARAMS,
    algorithm=st.sampled_from([HMAC_SHA1, HMAC_SHA256, "HMAC_MD5"]),
)
def test_the_url_as_called_first_accepts_what_the_sdk_accepts(
    scheme, called, signed, query, upper, params, sent, algorithm
):
    """``_signed`` tries the URL as called before the SDK's ``validate``: the same answer for
    any signature, over the URL with or without its port, another port, other parameters, a
    URL the SDK would spell otherwise (an empty query, a fragment, the scheme in capitals)
    signed as called."""
    validator = RequestValidator(TOKEN)
    scheme = scheme.upper() if upper else scheme
    url = f"{scheme}://{called}{PATH}{query}"
    signature = validator.compute_signature(
        f"{scheme}://{signed}{PATH}{query}", params, algorithm if algorithm != "HMAC_MD5" else None
    )
    assert _signed(validator, url, sent, signature, algorithm) == validator.validate(
        url, sent, signature, algorithm
    )


def test_a_callback_signed_over_the_url_as_called_costs_one_hmac():
    computed = []

    class Counting(RequestValidator):
        def compute_signature(self, uri, params, algorithm=None):
            computed.append(uri)
            return super().compute_signature(uri, params, algorithm)

    params = {"MessageSid": "SM1", "MessageStatus": "sent"}
    signature = sign(params, url=URL)
    assert _signed(Counting(TOKEN), URL, params, signature, HMAC_SHA1)
    assert computed == [URL]
    # Signed with the port the URL as called lacks: the SDK's two forms are tried too.
    computed.clear()
    signature = sign(params, url="http://testserver:80" + PATH)
    assert _signed(Counting(TOKEN), URL, params, signature, HMAC_SHA1)
    assert computed == [URL, URL, "http://testserver:80" + PATH]
