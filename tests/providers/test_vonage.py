"""Vonage end to end: SMS API receipts signed by vonage-http-client, Messages API tokens by PyJWT.

SMS API delivery receipts are signed with the SDK's own signer, ``Auth.sign_params`` (the one
the SDK uses for outbound signed requests), plus one of the SDK's published test vectors.

The Vonage SDKs have no signer for Messages API webhook tokens (``vonage_jwt.JwtClient`` makes
RS256 *application* JWTs), so those tokens are made with PyJWT following Vonage's documented
claims (iat, jti, iss "Vonage", payload_hash = SHA-256 hex of the body, api_key,
application_id; https://developer.vonage.com/en/messages/concepts/signed-webhooks), and
cross-checked against the published token vector of vonage-jwt's own tests.
"""

import json
import time
import warnings
from datetime import UTC, datetime
from hashlib import sha256
from urllib.parse import urlencode
from uuid import uuid4

import jwt
import pytest
from django.http import QueryDict
from vonage_http_client.auth import Auth

from delivery import registry
from delivery.adapters import WebhookRequest
from delivery.checks import Codes, check_providers
from delivery.error_codes import ErrorInfo
from delivery.exceptions import ConfigurationError
from delivery.lifecycle import ErrorCategory, Status
from delivery.models import Message, MessageEvent, RawWebhook
from providers.vonage import VonageProvider, parse_message_timestamp
from providers.vonage_errors import VONAGE_ERRORS
from providers.vonage_messages import messages_error_code, parse_messages_timestamp
from tests.fixtures import vonage as payloads
from tests.provider_contract import ProviderContract

pytestmark = [pytest.mark.vonage, pytest.mark.django_db]

PATH = "/webhooks/vonage/status/"
SECRET = "vonage-signature-secret-0123456789abcdef"
ROTATED = "rotated-vonage-signature-secret-012345"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
OPTIONS = {"SIGNATURE_SECRETS": [SECRET, ROTATED], "SIGNATURE_METHOD": "sha256"}


@pytest.fixture(autouse=True)
def vonage_registered(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["vonage"] = dict(OPTIONS)
    return sms_delivery_settings["PROVIDERS"]["vonage"]


# -- SMS API delivery receipts: signed by the SDK ---------------------------------------------


def sign_dlr(params, secret=SECRET, method="sha256", timestamp=None):
    """``params`` as Vonage sends a signed DLR: plus ``nonce``, ``timestamp`` and ``sig``."""
    signed = {
        **params,
        "nonce": str(uuid4()),
        "timestamp": str(int(time.time()) if timestamp is None else timestamp),
    }
    auth = Auth(
        api_key=params.get("api-key", "key"), signature_secret=secret, signature_method=method
    )
    signed["sig"] = auth.sign_params(dict(signed))  # sign_params may add to its argument
    return signed


def send_dlr(client, params, how="get"):
    """Send DLR fields the way the dashboard's "Webhook format" says: GET, POST or POST-JSON."""
    if how == "get":
        return client.get(PATH, params)
    if how == "form":
        return client.post(PATH, urlencode(params), content_type=FORM)
    return client.post(PATH, json.dumps(params), content_type=JSON)


def post_dlr(client, params, how="get", **signing):
    return send_dlr(client, sign_dlr(params, **signing), how)


class TestVonageSmsApiContract(ProviderContract):
    """The SMS API: delivery receipts and inbound SMS signed with ``sig`` (sent as GET)."""

    provider = "vonage"
    secret, rotated_secret, wrong_secret = SECRET, ROTATED, "retired-secret-000"
    sent_word, delivered_word = "accepted", "delivered"

    def report(self, word, message_id):
        return payloads.dlr(word, message_id=message_id)

    def inbound(self, text, message_id):
        return payloads.inbound_sms(text, message_id=message_id)

    def without_message_id(self, payload):
        return {k: v for k, v in payload.items() if k != "messageId"}

    def send(self, client, payload, *, kind="status", secret=None):
        return client.get(f"/webhooks/vonage/{kind}/", sign_dlr(payload, secret=secret or SECRET))

    def send_unsigned(self, client, payload, *, kind="status"):
        return client.get(f"/webhooks/vonage/{kind}/", payload)

    def send_tampered(self, client, payload, *, kind="status"):
        return client.get(PATH, {**sign_dlr(payload), "status": "delivered"})

    def send_stale(self, client, payload):
        return client.get(PATH, sign_dlr(payload, timestamp=int(time.time()) - 5 * 86400))


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_signed_receipt_in_every_webhook_format(client, how):
    response = post_dlr(client, payloads.DLR_DELIVERED, how)
    assert response.status_code == 200, response.content
    event = MessageEvent.objects.get()
    assert (event.status, event.raw_status) == (Status.DELIVERED, "delivered")
    assert event.raw_payload["client-ref"] == "order-8842"
    assert RawWebhook.objects.get().account == payloads.API_KEY


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_tampered_receipt_is_403(client, how):
    signed = sign_dlr(payloads.DLR_FAILED_2)
    response = send_dlr(client, {**signed, "status": "delivered", "err-code": "0"}, how)
    assert response.status_code == 403
    assert not RawWebhook.objects.exists()


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
def test_configured_hmac_method(client, vonage_registered, method):
    vonage_registered["SIGNATURE_METHOD"] = method
    assert post_dlr(client, payloads.DLR_DELIVERED, method=method).status_code == 200
    other = "sha1" if method != "sha1" else "sha256"
    assert post_dlr(client, payloads.DLR_ACCEPTED, method=other).status_code == 403


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
def test_unset_method_is_read_off_the_signature_length(client, vonage_registered, method):
    del vonage_registered["SIGNATURE_METHOD"]
    assert post_dlr(client, payloads.DLR_DELIVERED, method=method).status_code == 200
    signed = sign_dlr(payloads.DLR_ACCEPTED, method=method)
    response = send_dlr(client, {**signed, "sig": signed["sig"][:-2]})
    assert response.status_code == 403


def test_md5_hash_method_is_a_configuration_error(client, vonage_registered):
    vonage_registered["SIGNATURE_METHOD"] = "md5hash"
    response = post_dlr(client, payloads.DLR_DELIVERED)
    assert response.status_code == 503  # Vonage retries while the settings are fixed
    assert "misconfigured" in response.json()["detail"]
    assert not RawWebhook.objects.exists()


def test_published_sdk_vector_verifies(client, vonage_registered):
    """vonage-python-sdk ``http_client/tests/test_auth.py``: HMAC-MD5 of {param, timestamp}."""
    vonage_registered.update(
        SIGNATURE_SECRETS="signature_secret", SIGNATURE_METHOD="md5", SIGNATURE_MAX_AGE=None
    )
    vector = {
        "param": "value",
        "timestamp": "1234567890",
        "sig": "655a4d0b7f064dff438defc52b012cf5",
    }
    response = client.get(PATH, vector)
    assert response.status_code == 400  # signature accepted; not a delivery receipt
    assert RawWebhook.objects.get().parse_error == "messageId is missing."
    response = client.get(PATH, {**vector, "param": "other"})
    assert response.status_code == 403


def test_sdk_vector_is_stale_under_the_default_window(client, vonage_registered):
    vonage_registered.update(SIGNATURE_SECRETS="signature_secret", SIGNATURE_METHOD="md5")
    vector = {
        "param": "value",
        "timestamp": "1234567890",
        "sig": "655a4d0b7f064dff438defc52b012cf5",
    }
    response = client.get(PATH, vector)
    assert response.status_code == 403
    assert "stale" in response.json()["detail"]


@pytest.mark.parametrize(
    "offset, max_age, expected",
    [
        (-100, 300, 200),
        (-600, 300, 403),
        (-3 * 24 * 3600, "default", 200),  # a retry 72 h later still verifies
        (-5 * 24 * 3600, "default", 403),
        (60, "default", 200),  # clock skew
        (900, "default", 403),
        (-10 * 365 * 24 * 3600, None, 200),  # None: no freshness check
    ],
)
def test_signature_freshness(client, vonage_registered, offset, max_age, expected):
    if max_age != "default":
        vonage_registered["SIGNATURE_MAX_AGE"] = max_age
    timestamp = int(time.time()) + offset
    response = post_dlr(client, payloads.DLR_DELIVERED, timestamp=timestamp)
    assert response.status_code == expected
    if expected == 403:
        assert "stale" in response.json()["detail"]
        assert not RawWebhook.objects.exists()


def test_signed_receipt_without_timestamp_is_403(client):
    auth = Auth(api_key="key", signature_secret=SECRET, signature_method="sha256")
    params = dict(payloads.DLR_DELIVERED)
    params["sig"] = auth.sign_params({**params, "timestamp": "0"})
    assert send_dlr(client, params).status_code == 403


def test_unsigned_receipts_only_when_allowed(client, vonage_registered):
    assert client.get(f"{PATH}?{payloads.UNSIGNED_GET_QUERY}").status_code == 403
    vonage_registered["UNSIGNED_DLRS_ALLOWED"] = True
    assert client.get(f"{PATH}?{payloads.UNSIGNED_GET_QUERY}").status_code == 200
    message = Message.objects.get()
    assert (message.provider_message_id, message.current_status) == (
        "0C0000002EEBDA56",
        Status.DELIVERED,
    )
    assert (message.destination_country, message.sender_identity) == ("DK", "Tak")
    event = MessageEvent.objects.get()
    assert event.provider_occurred_at == datetime(2017, 5, 2, 11, 24, 3, tzinfo=UTC)
    assert event.raw_payload["scts"] == "1705021324"  # Danish local time, kept as received
    # A signature that is present is still checked.
    response = post_dlr(client, payloads.DLR_DELIVERED, secret="retired-secret-000")
    assert response.status_code == 403


def test_subaccount_receipts_use_the_subaccount_secret(client, vonage_registered):
    sub_secret = "subaccount-signature-secret-0123456789"
    vonage_registered["SUBACCOUNTS"] = {"sub12345": [sub_secret]}
    receipt = payloads.dlr("delivered", **{"api-key": "sub12345"})
    assert post_dlr(client, receipt, secret=sub_secret).status_code == 200
    assert post_dlr(client, payloads.dlr("accepted", **{"api-key": "sub12345"})).status_code == 403
    assert RawWebhook.objects.get().account == "sub12345"


DLR_STATUS_TABLE = {
    "accepted": Status.SENT,
    "buffered": Status.SENT,
    "delivered": Status.DELIVERED,
    "expired": Status.EXPIRED,
    "failed": Status.UNDELIVERED,
    "rejected": Status.REJECTED,
    "undelivered": Status.UNDELIVERED,
    "unknown": Status.UNKNOWN,
    "read": Status.UNKNOWN,  # a Messages API word means nothing in a DLR
    "teleported": Status.UNKNOWN,  # a status Vonage might add tomorrow
}


@pytest.mark.parametrize("raw, expected", DLR_STATUS_TABLE.items())
def test_every_documented_dlr_status_maps(client, raw, expected):
    assert post_dlr(client, payloads.dlr(raw)).status_code == 200
    event = MessageEvent.objects.get()
    assert (event.raw_status, event.status) == (raw, expected)
    assert Message.objects.get().needs_review == (expected == Status.UNKNOWN)


@pytest.mark.parametrize(
    "err_code, category",
    [
        ("2", ErrorCategory.UNREACHABLE_HANDSET),
        ("3", ErrorCategory.INVALID_NUMBER),
        ("6", ErrorCategory.CARRIER_FILTERING),
        ("9", ErrorCategory.OPT_OUT),
        ("15", ErrorCategory.CARRIER_FILTERING),
        ("99", ErrorCategory.PROVIDER_OUTAGE),
        ("42", ErrorCategory.UNKNOWN),  # not in Vonage's table
    ],
)
def test_err_code_is_kept_with_its_category(client, err_code, category):
    post_dlr(client, payloads.dlr("rejected", **{"err-code": err_code}))
    event = MessageEvent.objects.get()
    assert (event.error_code, event.error_category) == (err_code, category)


def test_err_code_zero_is_no_error(client):
    post_dlr(client, payloads.DLR_DELIVERED)
    event = MessageEvent.objects.get()
    assert (event.error_code, event.error_category) == ("", "")
    assert event.raw_payload["err-code"] == "0"


def test_event_time_is_the_utc_push_time_and_scts_is_kept(client):
    post_dlr(client, payloads.DLR_DELIVERED)
    event = MessageEvent.objects.get()
    assert event.provider_occurred_at == datetime(2026, 11, 22, 14, 37, 2, tzinfo=UTC)
    assert event.raw_payload["scts"] == "2611221437"
    assert event.dedupe_key.endswith(":scts=2611221437")


def test_receipts_differing_only_in_scts_are_distinct(client):
    post_dlr(client, payloads.dlr("accepted"))
    post_dlr(client, payloads.dlr("accepted", scts="2611221438"))
    assert MessageEvent.objects.count() == 2


def test_late_intermediate_receipt_keeps_the_final_status(client):
    post_dlr(client, payloads.DLR_DELIVERED)
    post_dlr(client, payloads.DLR_ACCEPTED)
    message = Message.objects.get()
    assert message.current_status == Status.DELIVERED
    assert message.delivered_at == datetime(2026, 11, 22, 14, 37, 2, tzinfo=UTC)
    assert [e.applied for e in MessageEvent.objects.timeline(message)] == [True, False]


def test_receipt_before_the_message_exists_fills_in_the_summary(client):
    assert post_dlr(client, payloads.DLR_REJECTED_6).status_code == 200
    message = Message.objects.get()
    assert message.provider_message_id == "0A0000001234ABCD"
    assert (message.current_status, message.error_code) == (Status.REJECTED, "6")
    assert message.error_category == ErrorCategory.CARRIER_FILTERING
    assert (message.sender_identity, message.destination_country) == ("Acme", "GB")
    assert message.recipient == "+447700900001"  # msisdn, not ``to``


def test_each_part_of_a_long_message_reports_on_its_own_id(client):
    post_dlr(client, payloads.dlr("delivered", message_id="0B00000127FDBC63"))
    post_dlr(client, payloads.dlr("delivered", message_id="0B00000127FDBC64"))
    assert Message.objects.count() == 2  # one per messageId the send call returned


def test_unknown_receipt_fields_are_kept(client):
    response = post_dlr(client, payloads.dlr("delivered", **{"brand-new-field": "42"}), "form")
    assert response.status_code == 200
    assert MessageEvent.objects.get().raw_payload["brand-new-field"] == "42"


@pytest.mark.parametrize("missing", ["messageId", "status"])
def test_signed_but_incomplete_receipt_is_400_and_kept(client, missing):
    receipt = {k: v for k, v in payloads.DLR_DELIVERED.items() if k != missing}
    response = post_dlr(client, receipt, "form")
    assert response.status_code == 400
    assert RawWebhook.objects.get().parse_error == f"{missing} is missing."
    assert not MessageEvent.objects.exists()


# -- Messages API status webhooks: bearer JWT + payload_hash ---------------------------------


def token_for(body: bytes, secret=SECRET, **claims):
    """A token with Vonage's documented claims; a claim set to None is left out."""
    payload = {
        "iat": int(time.time()),
        "jti": str(uuid4()),
        "iss": "Vonage",
        "payload_hash": sha256(body).hexdigest(),
        "api_key": payloads.API_KEY,
        "application_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    with warnings.catch_warnings():  # short secrets of the wrong-secret cases
        warnings.simplefilter("ignore", getattr(jwt, "InsecureKeyLengthWarning", UserWarning))
        return jwt.encode(payload, secret, algorithm="HS256")


def post_status(client, payload, secret=SECRET, body=None, token=None, **claims):
    body = json.dumps(payload, separators=(",", ":")).encode() if body is None else body
    token = token or token_for(body, secret, **claims)
    return client.post(PATH, body, content_type=JSON, headers={"Authorization": f"Bearer {token}"})


class TestVonageMessagesApiContract(ProviderContract):
    """The Messages API: status webhooks and inbound messages signed by a bearer JWT."""

    provider = "vonage"
    secret, rotated_secret, wrong_secret = SECRET, ROTATED, "retired-secret-000"
    sent_word, delivered_word = "submitted", "delivered"
    unsigned_status = 503  # see send_unsigned

    def report(self, word, message_id):
        return payloads.message_status(word, message_uuid=message_id)

    def inbound(self, text, message_id):
        return payloads.inbound_message(text, message_uuid=message_id)

    def without_message_id(self, payload):
        return {k: v for k, v in payload.items() if k != "message_uuid"}

    def send(self, client, payload, *, kind="status", secret=None, **claims):
        body = json.dumps(payload, separators=(",", ":")).encode()
        token = token_for(body, secret or SECRET, **claims)
        return client.post(
            f"/webhooks/vonage/{kind}/",
            body,
            content_type=JSON,
            headers={"Authorization": f"Bearer {token}"},
        )

    def send_unsigned(self, client, payload, *, kind="status"):
        # 503, not 403: Vonage says an unsigned Messages callback follows an internal error on
        # its side and asks for a 5xx so that it retries, signed. Nothing is written either way.
        return client.post(f"/webhooks/vonage/{kind}/", json.dumps(payload), content_type=JSON)

    def send_tampered(self, client, payload, *, kind="status"):
        body = json.dumps(payload, separators=(",", ":")).encode()
        forged = json.dumps({**payload, "status": "delivered"}, separators=(",", ":")).encode()
        token = token_for(body)
        return post_status(client, None, body=forged, token=token)

    def send_stale(self, client, payload):
        return self.send(client, payload, iat=int(time.time()) - 5 * 86400)


def test_tampered_body_is_403(client):
    body = json.dumps(payloads.MESSAGES_REJECTED_1250).encode()
    token = token_for(body)
    tampered = body.replace(b'"rejected"', b'"delivered"')
    response = post_status(client, None, body=tampered, token=token)
    assert response.status_code == 403
    assert "payload_hash" in response.json()["detail"]
    assert not RawWebhook.objects.exists()


def test_body_is_hashed_as_received_not_re_serialized(client):
    body = json.dumps(payloads.MESSAGES_DELIVERED, indent=2).encode()  # any byte layout
    assert post_status(client, None, body=body).status_code == 200


def test_token_without_payload_hash_is_403(client):
    response = post_status(client, payloads.MESSAGES_DELIVERED, payload_hash=None)
    assert response.status_code == 403
    assert "payload_hash" in response.json()["detail"]


def test_published_vonage_jwt_vector(client, vonage_registered):
    """vonage-jwt's own test token (``jwt/tests/test_verify_jwt.py``): the SDK accepts its
    signature; it carries no payload_hash, so it cannot vouch for a body and is refused."""
    token = (
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJPbmxpbmUgSldUIEJ1aWxkZXIiLCJpYXQiOjE2"
        "OTc2MzQ2ODAsImV4cCI6MzMyNTQ1NDA4MjgsImF1ZCI6IiIsInN1YiI6IiJ9.88vJc3I2HhuqEDixHXVhc9R30t"
        "A6U_HQHZTC29y6CGM"
    )
    vonage_registered["SIGNATURE_SECRETS"] = "qwertyuiopasdfghjklzxcvbnm123456"
    response = post_status(client, payloads.MESSAGES_DELIVERED, token=token)
    assert response.status_code == 403
    assert "payload_hash" in response.json()["detail"]
    vonage_registered["SIGNATURE_SECRETS"] = SECRET
    response = post_status(client, payloads.MESSAGES_DELIVERED, token=token)
    assert "does not match" in response.json()["detail"]


def test_malformed_token_is_403(client):
    response = post_status(client, payloads.MESSAGES_DELIVERED, token="not.a.jwt")
    assert response.status_code == 403


@pytest.mark.parametrize(
    "offset, expected",
    [(-60, 200), (-5 * 24 * 3600, 403), (30, 200), (900, 403)],
)
def test_token_freshness(client, offset, expected):
    """``iat`` 30 s ahead (Vonage's clock) passes although PyJWT alone allows no skew."""
    response = post_status(client, payloads.MESSAGES_DELIVERED, iat=int(time.time()) + offset)
    assert response.status_code == expected
    if expected == 403:
        assert "stale" in response.json()["detail"]


def test_subaccount_token_uses_the_subaccount_secret(client, vonage_registered):
    sub_secret = "subaccount-signature-secret-0123456789"
    vonage_registered["SUBACCOUNTS"] = {"sub12345": sub_secret}
    ok = post_status(client, payloads.MESSAGES_DELIVERED, secret=sub_secret, api_key="sub12345")
    assert ok.status_code == 200
    assert RawWebhook.objects.get().account == "sub12345"
    bad = post_status(client, payloads.MESSAGES_SUBMITTED, api_key="sub12345")
    assert bad.status_code == 403


MESSAGES_STATUS_TABLE = {
    "submitted": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "rejected": Status.REJECTED,
    "undeliverable": Status.FAILED,
    "buffered": Status.UNKNOWN,  # an SMS API word means nothing here
    "deleted": Status.UNKNOWN,  # a status Vonage might add tomorrow
}


@pytest.mark.parametrize("raw, expected", MESSAGES_STATUS_TABLE.items())
def test_every_documented_messages_status_maps(client, raw, expected):
    assert post_status(client, payloads.message_status(raw)).status_code == 200
    event = MessageEvent.objects.get()
    assert (event.raw_status, event.status) == (raw, expected)
    assert Message.objects.get().needs_review == (expected == Status.UNKNOWN)


def test_rejected_status_error_code_detail_and_summary(client):
    assert post_status(client, payloads.MESSAGES_REJECTED_1250).status_code == 200
    message = Message.objects.get()
    assert message.provider_message_id == payloads.MESSAGES_REJECTED_1250["message_uuid"]
    assert (message.current_status, message.error_code) == (Status.REJECTED, "1250")
    assert message.error_category == ErrorCategory.PROVIDER_OUTAGE
    event = MessageEvent.objects.get()
    assert event.error_detail.startswith("Unroutable")
    assert event.provider_occurred_at == datetime(2026, 11, 22, 14, 37, 2, tzinfo=UTC)
    assert message.recipient == "+447700900001"
    assert (message.sender_identity, message.destination_country) == ("447700900000", "GB")
    assert message.segments == 2


def test_messages_duplicates_and_out_of_order(client):
    for _ in range(2):
        assert post_status(client, payloads.MESSAGES_DELIVERED).status_code == 200
    assert post_status(client, payloads.MESSAGES_SUBMITTED).status_code == 200
    message = Message.objects.get()
    assert message.current_status == Status.DELIVERED
    assert MessageEvent.objects.get(status=Status.DELIVERED).duplicate_count == 1
    assert [e.applied for e in MessageEvent.objects.timeline(message)] == [True, False]


def test_whatsapp_sender_read_receipt_and_window_error(client):
    post_status(client, payloads.WHATSAPP_READ)
    post_status(client, payloads.WHATSAPP_DELIVERED)
    message = Message.objects.get(provider_message_id=payloads.WHATSAPP_UUID)
    assert message.sender_identity == "whatsapp:447700900000"
    assert message.recipient == "+447700900001"
    assert message.current_status == Status.READ
    post_status(client, payloads.WHATSAPP_REJECTED_1340)
    rejected = MessageEvent.objects.get(status=Status.REJECTED)
    assert (rejected.error_code, rejected.error_category) == ("1340", ErrorCategory.CHANNEL_POLICY)


def test_unknown_status_fields_are_kept(client):
    payload = payloads.message_status("delivered", new_thing={"nested": [1, 2]})
    assert post_status(client, payload).status_code == 200
    raw = MessageEvent.objects.get().raw_payload
    assert raw["new_thing"] == {"nested": [1, 2]}
    assert raw["client_ref"] == "order-8842"


def test_signed_status_without_status_is_400_and_kept(client):
    payload = {k: v for k, v in payloads.MESSAGES_DELIVERED.items() if k != "status"}
    assert post_status(client, payload).status_code == 400
    assert RawWebhook.objects.get().parse_error == "status is missing."


def test_signed_body_that_is_not_json_is_400_and_kept(client):
    response = post_status(client, None, body=b"message_uuid=oops")
    assert response.status_code == 400
    assert "JSON" in RawWebhook.objects.get().parse_error


def _webhook(method, body=b"", content_type="", headers=None, query=""):
    return WebhookRequest(
        method=method,
        url="http://testserver" + PATH,
        path=PATH,
        body=body,
        headers={"Content-Type": content_type, **(headers or {})},
        query=QueryDict(query),
    )


def test_product_is_told_by_content():
    """Bearer token or JSON with message_uuid: Messages API; anything else: an SMS API DLR."""
    provider = VonageProvider(OPTIONS)
    assert provider._is_messages(_webhook("POST", b'{"message_uuid":"x"}', JSON))
    assert provider._is_messages(_webhook("POST", b"", JSON, {"Authorization": "Bearer a.b.c"}))
    assert not provider._is_messages(_webhook("POST", b'{"messageId":"x"}', JSON))
    assert not provider._is_messages(_webhook("POST", b"messageId=x", FORM))
    assert not provider._is_messages(_webhook("GET", query="message_uuid=x"))
    assert not provider._is_messages(_webhook("POST", b"{", JSON))
    assert not provider._is_messages(_webhook("POST", b"{}", JSON, {"Authorization": "Basic eA=="}))


def test_account_never_raises():
    provider = VonageProvider(OPTIONS)
    assert provider.account(_webhook("POST", b"{", JSON)) == ""
    assert provider.account(_webhook("POST", b"", JSON, {"Authorization": "Bearer junk"})) == ""
    assert provider.account(_webhook("GET", query="api-key=abcd1234")) == "abcd1234"


# -- configuration, catalogue, time formats ---------------------------------------------------


@pytest.mark.parametrize(
    "options, problem",
    [
        ({}, "has no SIGNATURE_SECRETS"),
        ({"SIGNATURE_SECRETS": ""}, "has no SIGNATURE_SECRETS"),
        ({"UNSIGNED_DLRS_ALLOWED": True}, None),
        ({"SIGNATURE_SECRETS": "a,b"}, None),
        ({"SUBACCOUNTS": {"key": "secret"}}, None),
        ({"SIGNATURE_SECRETS": "a", "SIGNATURE_METHOD": "md5hash"}, "MD5 hash"),
        ({"SIGNATURE_SECRETS": "a", "SIGNATURE_METHOD": "sha384"}, "not one of md5, sha1"),
        ({"SIGNATURE_SECRETS": "a", "SIGNATURE_METHOD": "SHA256"}, None),
        ({"SIGNATURE_SECRETS": "a", "SIGNATURE_MAX_AGE": "300"}, "SIGNATURE_MAX_AGE"),
        ({"SIGNATURE_SECRETS": "a", "SIGNATURE_MAX_AGE": None}, None),
    ],
)
def test_configuration_errors(options, problem):
    try:
        adapter = VonageProvider(options)
    except ConfigurationError as exc:  # a value of the wrong type: the adapter cannot be made
        problems = [str(exc)]
    else:
        problems = [
            p for p in [adapter.missing_credentials(), *adapter.configuration_errors()] if p
        ]
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


def test_system_check_names_the_missing_secret(settings):
    settings.SMS_DELIVERY["PROVIDERS"]["vonage"] = {}
    errors = [e for e in check_providers() if "vonage" in e.msg]
    assert [e.id for e in errors] == [Codes.PROVIDER_SECRETS]
    assert errors[0].msg.startswith("SMS_DELIVERY['PROVIDERS']['vonage'] has no SIGNATURE_SECRETS")


def test_messages_callbacks_need_a_secret_even_when_unsigned_receipts_are_allowed(
    client, vonage_registered
):
    vonage_registered.clear()
    vonage_registered["UNSIGNED_DLRS_ALLOWED"] = True
    response = post_status(client, payloads.MESSAGES_DELIVERED)
    assert response.status_code == 403
    assert "No Vonage signature secret" in response.json()["detail"]


def test_status_tables_agree_where_the_products_overlap():
    provider = VonageProvider()
    shared = provider.dlr_statuses.keys() & provider.messages_statuses.keys()
    assert shared == {"delivered", "rejected"}
    for word in shared:
        assert provider.dlr_statuses[word] == provider.messages_statuses[word]
    assert provider.map_status(" Delivered ") == Status.DELIVERED
    assert provider.map_status("teleported") == Status.UNKNOWN


@pytest.mark.parametrize("code", [*(str(c) for c in range(1, 16)), "99"])
def test_every_documented_dlr_err_code_is_described(code):
    info = VONAGE_ERRORS.lookup(code)
    assert isinstance(info, ErrorInfo) and code in VONAGE_ERRORS
    assert info.title.strip() and info.note.strip() and info.next_step.strip()


def test_catalogue_entries_are_well_formed():
    for code, info in VONAGE_ERRORS.entries.items():
        assert code == info.code and code.isdigit()
        assert isinstance(info.category, ErrorCategory)
        assert info.title.strip() and info.note.strip() and info.next_step.strip()
    fallback = VONAGE_ERRORS.lookup("4242")
    assert fallback.category == ErrorCategory.UNKNOWN
    assert "developer.vonage.com" in fallback.next_step
    assert registry.error_info("vonage", "1340").category == ErrorCategory.CHANNEL_POLICY


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-11-22 14:37:02", datetime(2026, 11, 22, 14, 37, 2, tzinfo=UTC)),
        ("2017-05-02+11:24:03", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_message_timestamp(value, expected):
    assert parse_message_timestamp(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-11-22T14:37:02.000Z", datetime(2026, 11, 22, 14, 37, 2, tzinfo=UTC)),
        ("2026-11-22T16:37:02+02:00", datetime(2026, 11, 22, 14, 37, 2, tzinfo=UTC)),
        ("2020-01-01 15:43:21 +0200", datetime(2020, 1, 1, 13, 43, 21, tzinfo=UTC)),
        ("2026-11-22T14:37:02", datetime(2026, 11, 22, 14, 37, 2, tzinfo=UTC)),
        ("yesterday", None),
        (1795358222, None),
    ],
)
def test_parse_messages_timestamp(value, expected):
    assert parse_messages_timestamp(value) == expected


@pytest.mark.parametrize(
    "error, code",
    [
        (payloads.messages_error(1340, "x"), "1340"),
        ({"title": "1000", "detail": "Throttled"}, "1000"),
        ({"type": "https://developer.vonage.com/api-errors#not-found"}, "not-found"),
        ({"title": "Rate Limit Hit"}, ""),
        ({}, ""),
    ],
)
def test_messages_error_code(error, code):
    assert messages_error_code(error) == code


def test_an_allowed_unsigned_receipt_is_recorded_as_not_checked(client, vonage_registered):
    vonage_registered["UNSIGNED_DLRS_ALLOWED"] = True
    assert send_dlr(client, payloads.DLR_DELIVERED).status_code == 200
    assert RawWebhook.objects.get().signature_valid is None
