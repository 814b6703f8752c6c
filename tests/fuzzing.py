"""Hostile requests to every webhook endpoint, and the rules every answer must keep.

Each request starts from a real payload of its provider and endpoint, which hypothesis then
mutates (values of the wrong type, too long, NUL bytes, lone surrogates, NaN, huge numbers, deep
nesting, missing and extra fields), encodes (form, query string, JSON, raw bytes; odd content
types, ``Accept`` headers and query strings) and, two times in three, signs correctly the
provider's way with its SDK, so the request gets past verification into the parsers. Unsigned
ones carry garbage signature headers.

:class:`Judge` checks every answer against the rules of the webhook pipeline (no 5xx but the
documented one, nothing written for a forgery, nothing partial, nothing lost) by counting rows
before and after. ``tests/test_fuzz.py`` runs it in-process with Django's test client;
``scripts/fuzz_live.py`` against a live server over HTTP.
"""

from __future__ import annotations

import base64
import json
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode
from uuid import uuid4

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.http import QueryDict
from hypothesis import strategies as st
from plivo.utils.signature_v3 import construct_get_url, construct_post_url, get_signature_v3
from twilio.request_validator import RequestValidator
from vonage_http_client.auth import Auth

from providers.vonage_messages import UnsignedCallback
from tests.fixtures import plivo, telnyx, twilio, vonage
from tests.privacy import PEOPLE

PROVIDERS = ("twilio", "vonage", "plivo", "telnyx")
ENDPOINTS = tuple((provider, kind) for provider in PROVIDERS for kind in ("status", "inbound"))

TWILIO_TOKEN = "fuzz-twilio-auth-token"
VONAGE_SECRET = "fuzz-vonage-signature-secret-0123456789"
PLIVO_TOKEN = "fuzz-plivo-auth-token"
TELNYX_KEY = Ed25519PrivateKey.from_private_bytes(sha256(b"fuzz-telnyx").digest())
TELNYX_PUBLIC_KEY = base64.b64encode(
    TELNYX_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
).decode()

#: ``SMS_DELIVERY["PROVIDERS"]`` for the fuzz: every provider, with the secrets above.
PROVIDER_SETTINGS = {
    "twilio": {"AUTH_TOKENS": [TWILIO_TOKEN]},
    "vonage": {"SIGNATURE_SECRETS": [VONAGE_SECRET], "SIGNATURE_METHOD": "sha256"},
    "plivo": {"AUTH_TOKENS": [PLIVO_TOKEN]},
    "telnyx": {"PUBLIC_KEYS": [TELNYX_PUBLIC_KEY]},
}
#: The same, as the demo project's environment variables (config/settings.py).
PROVIDER_ENVIRONMENT = {
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    "VONAGE_SIGNATURE_SECRET": VONAGE_SECRET,
    "VONAGE_SIGNATURE_METHOD": "sha256",
    "PLIVO_AUTH_TOKEN": PLIVO_TOKEN,
    "TELNYX_PUBLIC_KEY": TELNYX_PUBLIC_KEY,
}

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def _twilio_inbound(body: str) -> dict:
    return {
        "AccountSid": twilio.ACCOUNT_SID,
        "Body": body,
        "From": "+14155550100",
        "MessageSid": "SM5e1b2c904d1ab04f0fc7a58abca91342",
        "NumSegments": "1",
        "SmsStatus": "received",
        "To": "+15017122661",
    }


#: Real payloads of each endpoint, and how the provider sends them.
SEEDS: dict[tuple[str, str], list[tuple[str, Any]]] = {
    ("twilio", "status"): [
        ("form", twilio.DELIVERED),
        ("form", twilio.UNDELIVERED_30003),
        ("form", twilio.WHATSAPP_FAILED_63016),
        ("get", twilio.FAILED_30001),
        ("json", twilio.DELIVERED),
    ],
    ("twilio", "inbound"): [("form", _twilio_inbound("STOP")), ("get", _twilio_inbound("hi"))],
    ("vonage", "status"): [
        ("get", vonage.DLR_DELIVERED),
        ("form", vonage.dlr("failed", **{"err-code": "2"})),
        ("json", vonage.DLR_ACCEPTED),
        ("json", vonage.MESSAGES_DELIVERED),
        ("json", vonage.WHATSAPP_READ),
    ],
    ("vonage", "inbound"): [
        ("get", vonage.inbound_sms("STOP")),
        ("form", vonage.inbound_sms("hello")),
        ("json", vonage.inbound_message("STOP")),
    ],
    ("plivo", "status"): [
        ("form", plivo.DELIVERED),
        ("form", plivo.callback("undelivered", ErrorCode="200")),
        ("get", plivo.SENT),
        ("form", plivo.WHATSAPP_READ),
    ],
    ("plivo", "inbound"): [("form", plivo.incoming("STOP")), ("get", plivo.incoming("hi"))],
    ("telnyx", "status"): [
        ("json", telnyx.DOCS_MESSAGE_FINALIZED),
        ("json", telnyx.GROUP_FINALIZED),
        ("json", telnyx.event("delivery_failed")),
    ],
    ("telnyx", "inbound"): [("json", telnyx.inbound("STOP")), ("json", telnyx.INBOUND)],
}

# -- values ---------------------------------------------------------------------------------

_ODD_TEXT = [
    "",
    " ",
    "\x00",
    "SM\x00123",
    "\ud800",
    "a\udfffb",
    "NaN",
    "Infinity",
    "-1",
    "0",
    "70000",
    "%FF",
    "ÿþ",
    "😀" * 3,
    "\u202e",
    "+14155550100",
    "whatsapp:+15558675310",
    "Invalid 'To' Phone Number: +14155550123",
    "1" * 5000,
    "x" * 300,
    "<Response/>",
    "{}",
    "[]",
]
_text = st.one_of(
    st.sampled_from(_ODD_TEXT),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=60, max_size=400),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)
_number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 70000, 32768, 2**63, float("inf"), float("-inf"), float("nan")]),
    st.floats(allow_nan=True, allow_infinity=True),
)
#: A value where the provider puts text (or anything else).
values = st.recursive(
    st.one_of(_text, _number, st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=6,
)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside nested dicts and lists."""
    found = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*prefix, index))
    return found


def _set(data: Any, path: tuple, value: Any, delete: bool = False) -> None:
    for step in path[:-1]:
        data = data[step]
    if delete:
        del data[path[-1]]
    else:
        data[path[-1]] = value


@st.composite
def mutated(draw, payload: Any) -> Any:
    """``payload`` with a few values replaced, removed or added (none, sometimes)."""
    data = json.loads(json.dumps(payload))  # a deep copy
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        paths = _paths(data)
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "add" or not paths:
            key = draw(st.one_of(_text, st.sampled_from(["To", "From", "status", "sig", "id"])))
            if isinstance(data, dict):
                data[key] = draw(values)
            continue
        path = draw(st.sampled_from(paths))
        _set(data, path, draw(values), delete=action == "delete")
    return data


# -- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One request to make: what to send, how, and whether to sign it."""

    provider: str
    kind: str
    transport: str  #: "form", "get", "json", or "raw" (``body`` as is)
    payload: Any
    body: bytes = b""
    content_type: str | None = None  #: None: the transport's own
    headers: tuple[tuple[str, str], ...] = ()
    query: str = ""  #: extra query string, raw
    signed: bool = True


@dataclass(frozen=True)
class Request:
    method: str
    path: str  #: path and query string
    body: bytes
    headers: dict[str, str]  #: Content-Type included
    signed: bool  #: signed the provider's way (it may still fail the provider's check)


_DEEP = st.integers(min_value=33, max_value=3000).map(lambda n: ("[" * n + "1" + "]" * n).encode())
_raw_bodies = st.one_of(
    st.binary(max_size=300),
    _DEEP,
    st.just(b"\xff\xfe" + "STOP".encode("utf-16-le")),
    st.just(b"MessageSid=SM1&MessageStatus=sent\x00&To=%2B14155550100"),
    st.just(b'{"data": {"payload": ' * 40 + b"null" + b"}}" * 40),
    st.just(b"x" * 70_000),  # over MAX_BODY_BYTES
)
#: Header values valid in HTTP (visible ASCII and spaces): a server such as gunicorn refuses
#: others (DEL, say) before the app sees them.
_header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60
).map(str.strip)
_headers = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "Accept",
                "X-Twilio-Signature",
                "X-Twilio-Webhooks-Signature-Settings",
                "X-Plivo-Signature-V3",
                "X-Plivo-Signature-V3-Nonce",
                "X-Plivo-Signature-V2",
                "X-Plivo-Signature-V2-Nonce",
                "telnyx-signature-ed25519",
                "telnyx-timestamp",
                "Authorization",
                "X-Forwarded-Proto",
            ]
        ),
        st.one_of(
            st.sampled_from(["text/xml", "application/xml", "*/*", "Bearer x.y.z", "Bearer "]),
            _header_values,
        ),
    ),
    max_size=3,
)
_content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "",
            "text/plain",
            "application/json; charset=latin-1",
            "application/x-www-form-urlencoded; charset=utf-16",
            "multipart/form-data; boundary=x",
            "application/" + "x" * 200,
        ]
    ),
)
_queries = st.sampled_from(
    [
        "",
        "",
        "",
        "x=%FF",
        "msisdn=447700900001",
        "To=%2B14155550100",
        "bodySHA256=00",
        "format=xml",
        "a=" + "%00" * 3,
    ]
)


@st.composite
def specs(draw, provider: str, kind: str) -> Spec:
    """A hostile request to one endpoint."""
    transport, seed = draw(st.sampled_from(SEEDS[provider, kind]))
    payload = draw(mutated(seed)) if draw(st.integers(0, 4)) else seed
    body = b""
    if draw(st.integers(0, 9)) == 0:
        transport, body = "raw", draw(_raw_bodies)
    elif draw(st.integers(0, 9)) == 0:
        transport = draw(st.sampled_from(["form", "get", "json"]))
    return Spec(
        provider=provider,
        kind=kind,
        transport=transport,
        payload=payload,
        body=body,
        content_type=draw(_content_types) if draw(st.integers(0, 5)) == 0 else None,
        headers=tuple(draw(_headers)),
        query=draw(_queries),
        signed=draw(st.sampled_from([True, True, False])),
    )


def _form(payload: Any) -> str:
    if not isinstance(payload, dict):
        payload = {"value": payload}
    return urlencode(
        {str(k): v for k, v in payload.items()},
        quote_via=lambda value, safe, encoding, errors: quote_plus(
            str(value), safe, "utf-8", "surrogatepass"
        ),
    )


#: Headers a signed request keeps from its spec: a provider sends no header of another
#: signature scheme, so the others would only make the request a forgery of our own making.
_HARMLESS_HEADERS = {"accept", "x-forwarded-proto"}


def build(spec: Spec, base_url: str) -> Request:
    """The HTTP request of ``spec``, signed as the provider signs it when ``spec.signed``.

    ``Request.signed`` is true only when the provider could have sent exactly this request: the
    judge then counts a 403 as a genuine callback refused.
    """
    path = f"/webhooks/{spec.provider}/{spec.kind}/"
    payload, query, headers = spec.payload, spec.query, dict(spec.headers)
    if spec.transport == "json" and spec.signed:
        # As the app will read it (NaN and Infinity become text): what Vonage would sign.
        payload = json.loads(json.dumps(payload), parse_constant=str)
    signable = spec.signed
    if spec.signed:
        headers = {k: v for k, v in headers.items() if k.lower() in _HARMLESS_HEADERS}
        if spec.provider == "twilio":  # the signer puts its own bodySHA256 in the URL
            query = "&".join(q for q in query.split("&") if not q.startswith("bodySHA256="))
    messages_api = isinstance(payload, dict) and "message_uuid" in payload
    vonage_sms = spec.provider == "vonage" and spec.transport != "raw" and not messages_api
    if spec.signed and vonage_sms:
        if spec.transport == "get" and query and isinstance(payload, dict):
            payload = {**payload, **dict(parse_qsl(query, keep_blank_values=True))}
            query = ""  # Vonage signs every parameter it sends
        payload, signable = _vonage_sign_fields(payload, as_text=spec.transport != "json")
    method = "POST"
    body = b""
    if spec.transport == "get":
        method = "GET"
        query = "&".join(q for q in (_form(payload), query) if q)
    elif spec.transport == "form":
        body = _form(payload).encode("ascii")
    elif spec.transport == "json":
        body = json.dumps(payload, ensure_ascii=True).encode()
    else:
        body = spec.body
    content_type = {"form": FORM, "json": JSON}.get(spec.transport, "")
    if spec.transport == "raw":
        content_type = JSON if body[:1] in (b"[", b"{") else FORM
    if spec.content_type is not None:
        content_type = spec.content_type
    if content_type:
        headers["Content-Type"] = content_type
    json_post = method == "POST" and _content_type(headers) == JSON
    if vonage_sms and json_post != (spec.transport == "json"):
        signable = False  # the app reads the fields from where Vonage would not have put them
    if spec.provider == "telnyx" and not _is_utf8(body):
        signable = False  # Telnyx signs text; its SDK refuses a body that is not UTF-8
    if spec.signed and spec.provider == "twilio" and json_post:
        query = "&".join(q for q in (query, f"bodySHA256={sha256(body).hexdigest()}") if q)
    full_path = f"{path}?{query}" if query else path
    # Vonage's Messages API, and any raw body, are signed by a bearer token over the body.
    bearer = spec.transport == "raw" or messages_api
    signed = False
    if spec.signed:
        try:
            url = base_url + full_path
            headers.update(_sign(spec.provider, method, url, body, headers, bearer))
            signed = signable
        except (UnicodeError, ValueError, TypeError):
            signed = False  # the signer cannot sign this input; the request goes unsigned
    return Request(method, full_path, body, headers, signed)


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _form_params(body: bytes) -> QueryDict:
    """Form fields as the app decodes them (``WebhookRequest.form``)."""
    return QueryDict(body.decode("utf-8", errors="replace"), encoding="utf-8")


def _content_type(headers: dict) -> str:
    return headers.get("Content-Type", "").split(";")[0].strip().lower()


def _sign(provider: str, method: str, url: str, body: bytes, headers: dict, bearer: bool) -> dict:
    """The signature headers of ``provider`` for this request, made with its SDK."""
    if provider == "twilio":
        # GET and JSON: the URL alone (JSON's body is covered by bodySHA256 in the URL).
        plain = method == "GET" or _content_type(headers) == JSON
        params = {} if plain else _form_params(body)
        return {"X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, params)}
    if provider == "plivo":
        nonce = uuid4().hex
        if method == "GET":
            base = construct_get_url(url, {})
        else:
            base = construct_post_url(url, dict(_form_params(body).lists()))
        signature = get_signature_v3(PLIVO_TOKEN, base.decode(), nonce).decode()
        return {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": nonce}
    if provider == "telnyx":
        stamp = str(int(time.time()))
        signature = TELNYX_KEY.sign(stamp.encode() + b"|" + body)
        return {
            "telnyx-signature-ed25519": base64.b64encode(signature).decode(),
            "telnyx-timestamp": stamp,
        }
    return {"Authorization": f"Bearer {_vonage_token(body)}"} if bearer else {}


def _vonage_token(body: bytes) -> str:
    claims = {
        "iat": int(time.time()),
        "jti": str(uuid4()),
        "iss": "Vonage",
        "payload_hash": sha256(body).hexdigest(),
        "api_key": vonage.API_KEY,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode(claims, VONAGE_SECRET, algorithm="HS256")


def _vonage_sign_fields(payload: Any, as_text: bool) -> tuple[Any, bool]:
    """SMS API fields with ``nonce``, ``timestamp`` and ``sig`` (the SDK's signer), and whether
    they could be signed. ``as_text``: sent as a form or query string, where every value
    arrives as text, so it is signed as text."""
    if not isinstance(payload, dict):
        return payload, False
    if as_text:
        payload = {str(key): str(value) for key, value in payload.items()}
    signed = {**payload, "nonce": str(uuid4()), "timestamp": str(int(time.time()))}
    signed.pop("sig", None)
    auth = Auth(api_key="fuzz", signature_secret=VONAGE_SECRET, signature_method="sha256")
    try:
        signed["sig"] = auth.sign_params(dict(signed))
    except (UnicodeError, TypeError, ValueError):
        return payload, False
    return signed, True


# -- the rules ------------------------------------------------------------------------------

#: The one documented 5xx that is not an outage: an unsigned Vonage Messages API callback is
#: answered 503 because Vonage asks for it (providers/vonage_messages.py, UnsignedCallback).
#: (Translatable text: read when a rule is checked, after Django's settings are loaded.)
VONAGE_UNSIGNED_503 = UnsignedCallback.default_detail


@dataclass
class Outcome:
    status: int
    detail: str
    deltas: dict[str, int]  #: rows added per table
    empty_messages: int  #: messages with no event (never legitimate from a webhook)


@dataclass
class Judge:
    """Counts what every answer says and keeps the ones that break a rule."""

    counts: Counter = field(default_factory=Counter)
    broken: list[tuple[str, Request, Outcome]] = field(default_factory=list)

    def judge(self, request: Request, outcome: Outcome) -> list[str]:
        problems = []
        status, deltas = outcome.status, outcome.deltas
        written = any(deltas.values())
        self.counts["requests"] += 1
        self.counts["signed" if request.signed else "unsigned"] += 1
        self.counts[f"status {status}"] += 1
        if status >= 500:
            if status == 503 and outcome.detail == str(VONAGE_UNSIGNED_503) and not written:
                self.counts["documented 503"] += 1
            else:
                self.counts["5xx"] += 1
                problems.append("5xx")
        if not request.signed and (status < 300 or written):
            self.counts["forged accepted"] += 1
            problems.append("forged request accepted or written")
        if request.signed and status in (200, 400) and deltas["raw"] != 1:
            self.counts["lost"] += 1
            problems.append("verified request not kept")
        if request.signed and status == 403:
            self.counts["lost"] += 1
            problems.append("a correctly signed request refused")
        if status == 400 and (deltas["events"] or deltas["messages"] or deltas["inbound"]):
            self.counts["partial"] += 1
            problems.append("400 with events written")
        if status not in (200, 400) and written:
            self.counts["partial"] += 1
            problems.append(f"{status} with rows written")
        if outcome.empty_messages:
            self.counts["partial"] += 1
            problems.append("a message without events")
        leaked = [n for n in PEOPLE if n in outcome.detail or n.lstrip("+") in outcome.detail]
        if leaked:
            self.counts["numbers leaked"] += 1
            problems.append(f"number in the answer: {leaked}")
        for problem in problems:
            self.broken.append((problem, request, outcome))
        return problems


def table_counts() -> dict[str, int]:
    """Rows per table, and messages without events."""
    from delivery.models import InboundMessage, Message, MessageEvent, RawWebhook

    return {
        "raw": RawWebhook.objects.count(),
        "events": MessageEvent.objects.count(),
        "messages": Message.objects.count(),
        "inbound": InboundMessage.objects.count(),
        "empty": Message.objects.filter(events__isnull=True).count(),
    }


def detail_of(body: bytes) -> str:
    """The ``detail`` of a JSON error answer, else the answer's text."""
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text
    return str(data.get("detail", text)) if isinstance(data, dict) else text


def outcome(status: int, detail: str, before: dict, after: dict) -> Outcome:
    deltas = {name: after[name] - before[name] for name in ("raw", "events", "messages", "inbound")}
    return Outcome(status, detail, deltas, after["empty"])
