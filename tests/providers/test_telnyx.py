"""Telnyx delivery webhooks end to end, signed the way Telnyx signs them.

The telnyx SDK ships a verifier but no signer, and neither it nor Telnyx's other SDKs publish a
fixed test vector: their own tests generate a key pair and sign ``"{timestamp}|{payload}"``
(telnyx-python ``tests/test_webhook.py`` ``signer`` fixture, with PyNaCl; telnyx-go
``lib/webhook_verification_test.go``, with crypto/ed25519). We do the same with ``cryptography``
(OpenSSL), an Ed25519 implementation independent of the PyNaCl/libsodium one the SDK verifies
with; ``test_pynacl_signer_of_telnyx_test_suite_agrees`` shows both produce the same signature.
The adapter verifies with ``cryptography`` (importing the SDK cost ~70 MiB a worker);
``test_the_adapter_and_the_sdk_accept_and_refuse_the_same_requests`` keeps the SDK's
``verify_webhook_signature`` as the oracle it must agree with.
"""

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from hashlib import sha256

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.signing import SigningKey

from delivery.adapters import WebhookRequest
from delivery.ingest import register_outbound
from delivery.lifecycle import ErrorCategory, Status
from delivery.models import InboundMessage, Message, MessageEvent, RawWebhook
from delivery.recipients import recipient_token
from providers.telnyx import TelnyxProvider, parse_occurred_at
from providers.telnyx_errors import TELNYX_ERRORS
from tests.fixtures import telnyx as payloads
from tests.provider_contract import ProviderContract

pytestmark = [pytest.mark.telnyx, pytest.mark.django_db]

PATH = "/webhooks/telnyx/status/"
JSON = "application/json"


def signing_key(name: str) -> Ed25519PrivateKey:
    """A deterministic Ed25519 key pair named ``name`` (seed: SHA-256 of the name)."""
    return Ed25519PrivateKey.from_private_bytes(sha256(name.encode()).digest())


def public_key(key: Ed25519PrivateKey) -> str:
    """The base64 public key, as the Telnyx portal shows it."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


CURRENT = signing_key("telnyx-current")
PREVIOUS = signing_key("telnyx-previous")  # still configured during a rotation
RETIRED = signing_key("telnyx-retired")  # no longer configured


def signature_headers(body: bytes, key=CURRENT, timestamp=None) -> dict:
    """``telnyx-signature-ed25519`` / ``telnyx-timestamp`` over ``"{timestamp}|{body}"``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(stamp.encode() + b"|" + body)
    return {
        "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
        "telnyx-timestamp": stamp,
    }


def post(client, payload, key=CURRENT, timestamp=None, body=None, **headers):
    """POST ``payload`` as Telnyx does: raw JSON body, signature headers."""
    if body is None:
        body = json.dumps(payload).encode()
    signed = signature_headers(body, key, timestamp)
    return client.post(PATH, body, content_type=JSON, headers={**signed, **headers})


@pytest.fixture(autouse=True)
def telnyx_enabled(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["telnyx"] = {
        "PUBLIC_KEYS": [public_key(CURRENT), public_key(PREVIOUS)]
    }


class TestTelnyxContract(ProviderContract):
    provider = "telnyx"
    secret, rotated_secret, wrong_secret = CURRENT, PREVIOUS, RETIRED
    sent_word, delivered_word = "sent", "delivered"
    stale_reason = "too old"

    def report(self, word, message_id):
        return payloads.event(word, message_id=message_id, event_id=f"{message_id}-{word}")

    def inbound(self, text, message_id):
        return payloads.inbound(text, message_id=message_id)

    def without_message_id(self, payload):
        body = json.loads(json.dumps(payload))
        del body["data"]["payload"]["id"]
        return body

    def send(self, client, payload, *, kind="status", secret=None):
        body = json.dumps(payload).encode()
        headers = signature_headers(body, secret or CURRENT)
        return client.post(f"/webhooks/telnyx/{kind}/", body, content_type=JSON, headers=headers)

    def send_unsigned(self, client, payload, *, kind="status"):
        return client.post(f"/webhooks/telnyx/{kind}/", json.dumps(payload), content_type=JSON)

    def send_tampered(self, client, payload, *, kind="status"):
        headers = signature_headers(json.dumps(payload).encode())
        forged = json.loads(json.dumps(payload))
        forged["data"]["payload"]["to"][0]["status"] = "delivered"
        return client.post(PATH, json.dumps(forged), content_type=JSON, headers=headers)

    def send_stale(self, client, payload):
        return post(client, payload, timestamp=int(time.time()) - 3600)


# -- signatures ---------------------------------------------------------------------------


def test_redeliveries_with_a_higher_attempt_are_one_event(client):
    """Telnyx retries with the same data.id and a higher meta.attempt: one event, counted."""
    for attempt in (1, 2, 3):
        assert post(client, payloads.event("delivered", attempt=attempt)).status_code == 200
    assert MessageEvent.objects.get().duplicate_count == 2
    assert RawWebhook.objects.count() == 3  # every receipt is evidence


def test_comma_separated_keys_are_accepted(client, sms_delivery_settings):
    keys = f"{public_key(RETIRED)}, {public_key(CURRENT)}"
    sms_delivery_settings["PROVIDERS"]["telnyx"] = {"PUBLIC_KEYS": keys}
    assert post(client, payloads.FAILED_40008).status_code == 200
    assert post(client, payloads.event("sent"), key=PREVIOUS).status_code == 403


def test_forged_body_is_403_and_writes_nothing(client):
    body = json.dumps(payloads.FAILED_40008).encode()
    headers = signature_headers(body)
    forged = body.replace(b"delivery_failed", b"delivered")
    response = client.post(PATH, forged, content_type=JSON, headers=headers)
    assert response.status_code == 403
    assert "signature" in response.json()["detail"].lower()
    assert not RawWebhook.objects.exists() and not Message.objects.exists()


def test_reserialised_json_does_not_verify(client):
    """Telnyx signs the raw bytes: the same JSON with other spacing is another message."""
    body = json.dumps(payloads.FAILED_40008).encode()
    headers = signature_headers(body)
    compact = json.dumps(payloads.FAILED_40008, separators=(",", ":")).encode()
    assert client.post(PATH, compact, content_type=JSON, headers=headers).status_code == 403


def test_timestamp_is_part_of_what_is_signed(client):
    body = json.dumps(payloads.FAILED_40008).encode()
    headers = signature_headers(body, timestamp=int(time.time()))
    headers["telnyx-timestamp"] = str(int(headers["telnyx-timestamp"]) - 1)
    assert client.post(PATH, body, content_type=JSON, headers=headers).status_code == 403


@pytest.mark.parametrize("age", [301, 600, 86_400], ids=["301s", "10min", "1day"])
def test_stale_timestamp_is_403_and_writes_nothing(client, age):
    response = post(client, payloads.FAILED_40008, timestamp=int(time.time()) - age)
    assert response.status_code == 403
    assert "too old or too new" in response.json()["detail"]
    assert not RawWebhook.objects.exists() and not MessageEvent.objects.exists()


def test_future_timestamp_is_403(client):
    response = post(client, payloads.FAILED_40008, timestamp=int(time.time()) + 600)
    assert response.status_code == 403
    assert not RawWebhook.objects.exists()


def test_timestamp_within_tolerance_is_accepted(client):
    assert post(client, payloads.FAILED_40008, timestamp=int(time.time()) - 240).status_code == 200


@pytest.mark.parametrize("drop", ["telnyx-signature-ed25519", "telnyx-timestamp"])
def test_missing_header_is_403(client, drop):
    body = json.dumps(payloads.FAILED_40008).encode()
    headers = signature_headers(body)
    del headers[drop]
    response = client.post(PATH, body, content_type=JSON, headers=headers)
    assert response.status_code == 403
    assert not RawWebhook.objects.exists()


@pytest.mark.parametrize(
    "header, value",
    [("telnyx-timestamp", "not-a-number"), ("telnyx-signature-ed25519", "bm90LWEtc2lnbmF0dXJl")],
)
def test_garbled_header_is_403(client, header, value):
    body = json.dumps(payloads.FAILED_40008).encode()
    headers = {**signature_headers(body), header: value}
    assert client.post(PATH, body, content_type=JSON, headers=headers).status_code == 403


def test_signed_body_that_is_not_utf8_is_403(client):
    body = b'{"data": "\xff\xfe"}'
    response = client.post(PATH, body, content_type=JSON, headers=signature_headers(body))
    assert response.status_code == 403
    assert not RawWebhook.objects.exists()


def test_no_public_key_configured_rejects_everything(client, sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["telnyx"] = {"PUBLIC_KEYS": []}
    assert post(client, payloads.FAILED_40008).status_code == 403


def test_a_malformed_configured_key_does_not_hide_a_good_one(client, sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"]["telnyx"] = {
        "PUBLIC_KEYS": ["bm90IGEga2V5", public_key(CURRENT)]
    }
    assert post(client, payloads.FAILED_40008).status_code == 200


def test_pynacl_signer_of_telnyx_test_suite_agrees():
    """Telnyx's own Python test signer (PyNaCl) and ours (cryptography) sign identically."""
    seed = sha256(b"telnyx-current").digest()
    body = json.dumps(payloads.FAILED_40008).encode()
    stamp = b"1795444625"
    nacl_signature = SigningKey(seed).sign(stamp + b"|" + body).signature
    ours = signature_headers(body, CURRENT, timestamp=1795444625)["telnyx-signature-ed25519"]
    assert base64.b64encode(nacl_signature).decode() == ours
    assert base64.b64encode(bytes(SigningKey(seed).verify_key)).decode() == public_key(CURRENT)


def test_the_adapter_and_the_sdk_accept_and_refuse_the_same_requests(monkeypatch):
    """The SDK's verifier is the reference: same verdict on good, tampered, stale, future,
    wrong-key, malformed and non-UTF-8 requests, for a good key and a malformed one.

    The clock stands still: both read ``time.time()``, and "300 s old" is on the boundary,
    where a second turning between their two readings would part them."""
    from telnyx.lib.webhook_verification import WebhookVerificationError, verify_webhook_signature

    from delivery.exceptions import SignatureInvalid

    body = json.dumps(payloads.FAILED_40008).encode()
    now = int(time.time())
    monkeypatch.setattr(time, "time", lambda: now + 0.999)
    good = signature_headers(body)
    cases = {
        "good": (body, good),
        "tampered": (body.replace(b"40008", b"40009"), good),
        "stale": (body, signature_headers(body, timestamp=now - 301)),
        "future": (body, signature_headers(body, timestamp=now + 400)),
        "just in time": (body, signature_headers(body, timestamp=now - 280)),
        "wrong key": (body, signature_headers(body, key=RETIRED)),
        "not base64": (body, {**good, "telnyx-signature-ed25519": "%%%"}),
        "short": (body, {**good, "telnyx-signature-ed25519": base64.b64encode(b"x").decode()}),
        "bad stamp": (body, {**good, "telnyx-timestamp": "soon"}),
        "not utf-8": (b"\xff" + body, signature_headers(b"\xff" + body)),
        "a space in the signature": (
            body,
            {**good, "telnyx-signature-ed25519": " " + good["telnyx-signature-ed25519"]},
        ),
        "300 s old": (body, signature_headers(body, timestamp=now - 300)),
    }
    for key in (public_key(CURRENT), "bm90IGEga2V5"):
        adapter = TelnyxProvider({"PUBLIC_KEYS": [key]})
        for name, (payload, headers) in cases.items():
            request = WebhookRequest(
                method="POST", url="https://x" + PATH, path=PATH, body=payload, headers=headers
            )
            try:
                verify_webhook_signature(payload, headers, key)
                sdk = True
            except (WebhookVerificationError, UnicodeDecodeError):
                sdk = False
            try:
                adapter.verify(request)
                ours = True
            except SignatureInvalid:
                ours = False
            assert ours == sdk, (name, key)


def test_signature_failure_is_logged_with_the_reason(client, caplog):
    post(client, payloads.FAILED_40008, timestamp=int(time.time()) - 900)
    assert "too old or too new" in caplog.text
    assert "123456" not in caplog.text  # never the body


# -- statuses, errors, times -----------------------------------------------------------------

STATUS_TABLE = {
    "queued": Status.ACCEPTED,
    "sending": Status.ACCEPTED,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "read": Status.READ,
    "delivery_unconfirmed": Status.SENT,
    "delivery_failed": Status.UNDELIVERED,
    "sending_failed": Status.FAILED,
    "expired": Status.EXPIRED,
    "unknown": Status.SENT,  # group MMS, recipient on another network
    "teleported": Status.UNKNOWN,  # a status Telnyx might add tomorrow
    "webhook_delivered": Status.UNKNOWN,  # inbound-only word; never expected outbound
}


@pytest.mark.parametrize("raw, expected", STATUS_TABLE.items())
def test_every_documented_status_maps(client, raw, expected):
    assert post(client, payloads.event(raw)).status_code == 200
    event = MessageEvent.objects.get()
    assert (event.raw_status, event.status) == (raw, expected)
    assert Message.objects.get().needs_review == (expected == Status.UNKNOWN)


@pytest.mark.parametrize(
    "code, category",
    [
        ("40001", ErrorCategory.INVALID_NUMBER),
        ("40003", ErrorCategory.CARRIER_FILTERING),
        ("40005", ErrorCategory.UNREACHABLE_HANDSET),
        ("40008", ErrorCategory.UNKNOWN),
        ("40012", ErrorCategory.INVALID_NUMBER),
        ("40013", ErrorCategory.SENDER_NOT_REGISTERED),
        ("40014", ErrorCategory.PROVIDER_OUTAGE),
        ("40300", ErrorCategory.OPT_OUT),
        ("49999", ErrorCategory.UNKNOWN),  # not in the catalogue
    ],
)
def test_error_code_maps_to_category(client, code, category):
    error = {"code": code, "title": "Title from Telnyx", "detail": "Detail from Telnyx"}
    assert post(client, payloads.event("delivery_failed", errors=[error])).status_code == 200
    message = Message.objects.get()
    assert (message.error_code, message.error_category) == (code, category)
    assert MessageEvent.objects.get().error_detail == "Detail from Telnyx"


def test_failed_delivery_end_to_end(client):
    response = post(client, payloads.FAILED_40008)
    assert response.json() == {"success": True, "processed": 1, "new": 1}
    message = Message.objects.get()
    assert message.provider_message_id == payloads.MESSAGE_ID
    assert (message.current_status, message.error_code) == (Status.UNDELIVERED, "40008")
    assert message.sender_identity == payloads.FROM
    assert message.segments == 1
    assert message.recipient == payloads.TO
    assert Message.objects.for_recipient(payloads.TO).get() == message
    event = MessageEvent.objects.get()
    assert event.provider_event_id == "0d8e3c1a-6f2b-4b7e-9d61-2f1c5a7e9b30"
    assert event.provider_occurred_at == datetime(2026, 11, 22, 14, 37, 5, 123000, tzinfo=UTC)
    assert event.error_detail == "Carrier did not accept the message"
    assert RawWebhook.objects.get().account == payloads.ORGANIZATION_ID


def test_docs_message_sent_example(client):
    assert post(client, payloads.DOCS_MESSAGE_SENT).status_code == 200
    event = MessageEvent.objects.get()
    assert (event.raw_status, event.status) == ("queued", Status.ACCEPTED)
    assert event.provider_event_id == "86f58db9-0fe3-4adc-9d1f-46e66e6e9323"
    assert event.provider_occurred_at == datetime(2019, 1, 23, 18, 10, 2, 574000, tzinfo=UTC)
    assert event.error_code == ""


def test_docs_message_finalized_example(client):
    assert post(client, payloads.DOCS_MESSAGE_FINALIZED).status_code == 200
    message = Message.objects.get()
    assert message.provider_message_id == "ac012cbf-5e09-46af-a69a-7c0e2d90993c"
    assert message.current_status == Status.DELIVERED
    assert message.delivered_at == datetime(2019, 12, 9, 21, 32, 14, 148000, tzinfo=UTC)
    assert message.sender_identity == "+13125000000"


def test_delivery_unconfirmed_keeps_its_error(client):
    error = {"code": "40008", "title": "Undeliverable"}
    post(client, payloads.event("delivery_unconfirmed", errors=[error]))
    event = MessageEvent.objects.get()
    assert (event.status, event.error_code, event.error_detail) == (
        Status.SENT,
        "40008",
        "Undeliverable",
    )


def test_error_is_not_pinned_on_a_delivered_report(client):
    post(client, payloads.event("delivered", errors=[{"code": "40008", "title": "Undeliverable"}]))
    message = Message.objects.get()
    assert (message.current_status, message.error_code, message.error_category) == (
        Status.DELIVERED,
        "",
        "",
    )


def test_numeric_error_code_is_read_as_text(client):
    post(
        client, payloads.event("delivery_failed", errors=[{"code": 40001, "title": "Not routable"}])
    )
    assert Message.objects.get().error_category == ErrorCategory.INVALID_NUMBER


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2019-01-23T18:10:02.574Z", datetime(2019, 1, 23, 18, 10, 2, 574000, tzinfo=UTC)),
        ("2019-12-09T21:32:14.148+00:00", datetime(2019, 12, 9, 21, 32, 14, 148000, tzinfo=UTC)),
        ("2026-11-22T16:37:05+02:00", datetime(2026, 11, 22, 14, 37, 5, tzinfo=UTC)),
        ("2018-02-02T22:25:27.521992Z", datetime(2018, 2, 2, 22, 25, 27, 521992, tzinfo=UTC)),
        ("2026-11-22T14:37:05", datetime(2026, 11, 22, 14, 37, 5, tzinfo=UTC)),  # no zone: UTC
        ("date-time", None),  # the placeholder on Telnyx's reference page
        ("", None),
        (None, None),
        (1795444625, None),
    ],
)
def test_occurred_at(value, expected):
    parsed = parse_occurred_at(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)


def test_unparseable_occurred_at_still_stores_the_event(client):
    assert post(client, payloads.event("sent", occurred_at="yesterday")).status_code == 200
    event = MessageEvent.objects.get()
    assert event.provider_occurred_at is None
    assert event.raw_payload["data"]["occurred_at"] == "yesterday"


# -- dedupe and ordering -----------------------------------------------------------------------


def test_distinct_events_with_the_same_status_are_both_kept(client):
    post(client, payloads.event("sent", event_id="11111111-1111-4111-8111-111111111111"))
    post(client, payloads.event("sent", event_id="22222222-2222-4222-8222-222222222222"))
    assert MessageEvent.objects.count() == 2
    assert MessageEvent.objects.filter(duplicate_count=0).count() == 2


def test_without_an_event_id_the_content_dedupes(client):
    body = payloads.event("delivered", event_id="")
    post(client, body)
    post(client, body)
    assert MessageEvent.objects.get().duplicate_count == 1


def test_late_sent_after_finalized_keeps_the_final_status(client):
    post(
        client,
        payloads.event(
            "delivered",
            event_id="33333333-3333-4333-8333-333333333333",
            occurred_at="2026-11-22T14:37:09.000+00:00",
        ),
    )
    post(client, payloads.event("sent", event_id="44444444-4444-4444-8444-444444444444"))
    message = Message.objects.get()
    assert message.current_status == Status.DELIVERED
    assert message.first_sent_at == datetime(2026, 11, 22, 14, 37, 2, 250000, tzinfo=UTC)
    assert [e.applied for e in MessageEvent.objects.timeline(message)] == [True, False]


def test_callback_before_the_message_exists_creates_it(client):
    assert not Message.objects.exists()
    post(client, payloads.event("sending_failed", errors=[{"code": "40014", "title": "x"}]))
    message = Message.objects.get()
    assert (message.provider, message.provider_message_id) == ("telnyx", payloads.MESSAGE_ID)
    assert (message.current_status, message.error_category) == (
        Status.FAILED,
        ErrorCategory.PROVIDER_OUTAGE,
    )


def test_callbacks_join_the_message_registered_at_send_time(client):
    """The id Telnyx returns from POST /v2/messages is the provider_message_id, unchanged."""
    registered = register_outbound(
        provider="telnyx",
        provider_message_id=payloads.MESSAGE_ID,
        to=payloads.TO,
        template_key="otp",
    )
    post(client, payloads.event("delivered"))
    message = Message.objects.get()
    assert message.pk == registered.pk
    assert (message.current_status, message.template_key) == (Status.DELIVERED, "otp")


# -- several recipients ----------------------------------------------------------------------


def test_group_mms_is_one_message_per_recipient(client):
    response = post(client, payloads.GROUP_FINALIZED)
    assert response.json() == {"success": True, "processed": 3, "new": 3}
    by_id = {m.provider_message_id: m for m in Message.objects.all()}
    delivered, failed, unknown = (
        by_id[f"{payloads.GROUP_ID}:{recipient_token(n)}"] for n in payloads.GROUP_TO
    )
    assert (delivered.current_status, delivered.error_code) == (Status.DELIVERED, "")
    assert (failed.current_status, failed.error_code, failed.error_category) == (
        Status.UNDELIVERED,
        "40012",
        ErrorCategory.INVALID_NUMBER,
    )
    assert (unknown.current_status, unknown.error_code) == (Status.SENT, "")
    assert [m.recipient for m in (delivered, failed, unknown)] == payloads.GROUP_TO
    event_ids = set(MessageEvent.objects.values_list("provider_event_id", flat=True))
    assert event_ids == {
        f"{payloads.GROUP_EVENT_ID}:{recipient_token(n)}" for n in payloads.GROUP_TO
    }
    assert not any(n in i for n in payloads.GROUP_TO for i in by_id), "ids must not show numbers"


def test_group_mms_redelivery_is_three_duplicates(client):
    post(client, payloads.GROUP_FINALIZED)
    response = post(client, payloads.GROUP_FINALIZED)
    assert response.json() == {"success": True, "processed": 3, "new": 0}
    assert MessageEvent.objects.count() == 3
    assert set(MessageEvent.objects.values_list("duplicate_count", flat=True)) == {1}


def test_group_recipient_without_a_number_gets_its_position(client):
    body = payloads.event(to=[("", "sent"), ("+13125550102", "sent")])
    assert post(client, body).status_code == 200
    ids = set(Message.objects.values_list("provider_message_id", flat=True))
    token = recipient_token("+13125550102")
    assert ids == {f"{payloads.MESSAGE_ID}:#0", f"{payloads.MESSAGE_ID}:{token}"}


# -- other events, unknown fields, malformed bodies ---------------------------------------------


def test_read_receipt_event(client):
    post(client, payloads.event("delivered", event_id="55555555-5555-4555-8555-555555555555"))
    post(client, payloads.event("read", event_type="message.read", type="RCS"))
    assert Message.objects.get().current_status == Status.READ


def test_inbound_message_on_the_status_url_is_recorded_not_a_delivery(client):
    """One URL per messaging profile: message.received comes here too (more in _inbound)."""
    response = post(client, payloads.INBOUND)
    assert response.status_code == 200
    assert response.json() == {"success": True, "processed": 1, "new": 1}
    assert not Message.objects.exists() and not MessageEvent.objects.exists()
    inbound = InboundMessage.objects.get()
    assert (inbound.provider_message_id, inbound.our_identity) == (
        payloads.INBOUND_ID,
        payloads.FROM,
    )
    raw = RawWebhook.objects.get()
    assert (raw.parse_error, raw.account) == ("", payloads.ORGANIZATION_ID)


def test_other_inbound_direction_event_is_acknowledged(client):
    body = payloads.with_changes(payloads.INBOUND, event_type="message.something_new")
    assert post(client, body).json() == {"success": True, "processed": 0, "new": 0}
    assert not InboundMessage.objects.exists() and not Message.objects.exists()


def test_unknown_fields_are_kept_and_do_not_break_parsing(client):
    body = payloads.event("sent", brand_new_field={"nested": 42})
    body["data"]["new_envelope_field"] = "x"
    body["meta"]["trace"] = "abc"
    assert post(client, body).status_code == 200
    raw_payload = MessageEvent.objects.get().raw_payload
    assert raw_payload["data"]["payload"]["brand_new_field"] == {"nested": 42}
    assert raw_payload["data"]["new_envelope_field"] == "x"
    assert raw_payload["meta"] == {
        "attempt": 1,
        "delivered_to": payloads.WEBHOOK_URL,
        "trace": "abc",
    }


def _without(path, body):
    """``body`` with the key at ``path`` (a tuple of keys) removed."""
    changed = json.loads(json.dumps(body))
    node = changed
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return changed


@pytest.mark.parametrize(
    "body, error",
    [
        (b"this is not valid JSON", "Body is not valid JSON"),
        (b"[1, 2]", "The body has no data object."),
        (json.dumps({"data": {"id": "x"}}).encode(), "data.payload is missing."),
        (
            json.dumps(_without(("data", "payload", "id"), payloads.FAILED_40008)).encode(),
            "data.payload.id (the message id) is missing.",
        ),
        (
            json.dumps(payloads.event(to=[])).encode(),
            "data.payload.to lists no recipient.",
        ),
        (
            json.dumps(
                _without(("data", "payload", "to", 0, "status"), payloads.FAILED_40008)
            ).encode(),
            "data.payload.to[0] has no status.",
        ),
    ],
    ids=["not-json", "not-an-object", "no-payload", "no-message-id", "no-recipient", "no-status"],
)
def test_signed_but_malformed_is_400_and_kept_for_review(client, body, error):
    response = post(client, None, body=body)
    assert response.status_code == 400
    raw = RawWebhook.objects.get()
    assert raw.parse_error.startswith(error)
    assert raw.signature_valid is True
    assert not MessageEvent.objects.exists()


# -- adapter unit checks ---------------------------------------------------------------------


def test_configuration_errors():
    assert TelnyxProvider({}).missing_credentials() == (
        "has no PUBLIC_KEYS; every Telnyx webhook would be rejected"
    )
    good = public_key(CURRENT)
    assert TelnyxProvider({"PUBLIC_KEYS": good}).configuration_errors() == []
    assert TelnyxProvider(
        {"PUBLIC_KEYS": [good, "bm90IGEga2V5", "%%%"]}
    ).configuration_errors() == [
        "PUBLIC_KEYS entry 2 is not a base64 Ed25519 public key (32 bytes)",
        "PUBLIC_KEYS entry 3 is not a base64 Ed25519 public key (32 bytes)",
    ]


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'{"data": []}', b'{"data": {"payload": 1}}']
)
def test_account_never_raises(body):
    request = WebhookRequest(method="POST", url="", path=PATH, body=body)
    assert TelnyxProvider({}).account(request) == ""


def test_error_catalogue_entries_are_complete():
    assert {"40001", "40008", "40014", "40015", "40300"} <= set(TELNYX_ERRORS.entries)
    for code, info in TELNYX_ERRORS.entries.items():
        assert info.code == code
        assert info.title and info.note and info.next_step
    unlisted = TELNYX_ERRORS.lookup("40999")
    assert unlisted.category == ErrorCategory.UNKNOWN
    assert "https://developers.telnyx.com/api/errors/40999" in unlisted.next_step


def test_an_event_id_reused_for_another_message_is_kept_for_review(client):
    """Telnyx event ids are unique; one that comes back on another message is not a duplicate
    of the first (merging would file the report under the wrong message)."""
    assert post(client, payloads.event("sent")).status_code == 200
    other = payloads.event("delivered", message_id="9c0b7e9e-0000-4000-8000-000000000001")
    response = post(client, other)
    assert response.status_code == 400
    assert "another message" in response.json()["detail"]
    assert Message.objects.get().provider_message_id == payloads.MESSAGE_ID  # no empty message
    assert MessageEvent.objects.get().duplicate_count == 0
    assert "another message" in RawWebhook.objects.get(parse_error__gt="").parse_error
