"""The demo's URLs plus the references ``bench/ingest.py`` measures the webhook against.

- ``/floor/``: the least a Django view can do with a webhook: one INSERT of the body inside a
  transaction.
- ``/hand-written/``: the work a status callback needs, written by hand, without the ORM, DRF
  or the app's rules: Twilio's SDK checks the signature over the webhook's URL (one HMAC, as
  the webhook's check costs for these callbacks), the request, the number and the payload are
  sealed with the app's keys (the number on every report: the webhook seals it once a
  message), and four statements in one transaction store the request, create-or-lock the
  message, store the event and set its status, in copies of the app's tables
  (``bench_hand_*``: same columns, indexes and foreign keys). It is not correct ingest (the
  last report wins, a redelivery is a new event unless its key matches, the number is not
  parsed): it is what the work costs on this machine.
- ``/hand-written/accept/``: what deferred mode's acceptance needs, by hand: the same signature
  check and sealing, then the request's one INSERT (autocommit, as the app's).
- ``/hand-written/one-statement/``: the report again, its three writes in one statement (a
  data-modifying ``WITH``, autocommit: no ``BEGIN`` or ``COMMIT`` round trips) and the message
  written once (its status set by the upsert): how near the floor a report written by hand
  can come here.
- ``/hand-written/rules/``: the report again, by hand (the same signature check and seals; no
  adapter, ORM or input fitting; the number read, hashed and sealed only for a message that has
  none, with the app's reader, as the app does), but written by the app's own statements, in the
  app's tables: ``delivery.statements``' report statement (the message locked, the event stored
  unless its key is, a redelivery counted, the summary folded by the precedence rule, the
  request stored) and, for a message it does not know, the new message's statement. What the
  app's rules cost the database, with the least Python around them. It is not correct ingest
  either (no retry when a concurrent report creates the message, no ``key taken`` review, no
  signals), and it writes the app's tables: ``bench/cpu.py`` runs it on a database of its own.

They run on the same gunicorn workers, middleware and database settings as the webhook.
"""

import functools
import json
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from django.db import connection, transaction
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from twilio.request_validator import RequestValidator, compare

from config.urls import urlpatterns as demo_urlpatterns
from delivery import crypto
from delivery.recipients import recipient_hash
from delivery.registry import get_provider

FLOOR_TABLE = "bench_floor"
#: The webhook's own URL path: what its callbacks are signed for.
STATUS_PATH = "/webhooks/twilio/status/"

_RAW = (
    "INSERT INTO bench_hand_raw (provider, account, method, path, content_type, "
    "request_encrypted, signature_valid, parse_error, received_at, recipient_hash) "
    "VALUES ('twilio', %s, 'POST', %s, %s, %s, true, '', now(), %s) RETURNING id"
)
_MESSAGE = (
    "INSERT INTO bench_hand_message (public_id, provider, provider_message_id, recipient_hash, "
    "recipient_encrypted, destination_country, recipient_time_zone, sender_identity, "
    "template_key, product_reference, current_status, status_event_key, error_code, "
    "error_category, needs_review, created_at, updated_at) "
    "VALUES (%s, 'twilio', %s, %s, %s, '', '', %s, '', '', 'accepted', '', '', '', false, "
    "now(), now()) ON CONFLICT (provider, provider_message_id) DO UPDATE SET "
    "updated_at = excluded.updated_at RETURNING id"
)
_EVENT = (
    "INSERT INTO bench_hand_event (message_id, raw_webhook_id, provider_event_id, dedupe_key, "
    "status, raw_status, error_code, error_category, error_detail, payload_encrypted, "
    "received_at, applied, duplicate_count, source) "
    "VALUES (%s, %s, '', %s, %s, %s, %s, '', '', %s, now(), true, 0, 'webhook') "
    "ON CONFLICT (dedupe_key) DO UPDATE SET duplicate_count = "
    "bench_hand_event.duplicate_count + 1 RETURNING id"
)
_ONE_STATEMENT = (
    "WITH r AS (" + _RAW + "), "  # noqa: S608 - constants, not input
    "m AS (INSERT INTO bench_hand_message (public_id, provider, provider_message_id, "
    "recipient_hash, recipient_encrypted, destination_country, recipient_time_zone, "
    "sender_identity, template_key, product_reference, current_status, status_event_key, "
    "error_code, error_category, needs_review, created_at, updated_at) "
    "VALUES (%s, 'twilio', %s, %s, %s, '', '', %s, '', '', %s, %s, %s, '', false, now(), now()) "
    "ON CONFLICT (provider, provider_message_id) DO UPDATE SET "
    "current_status = excluded.current_status, status_event_key = excluded.status_event_key, "
    "error_code = excluded.error_code, updated_at = excluded.updated_at RETURNING id) "
    "INSERT INTO bench_hand_event (message_id, raw_webhook_id, provider_event_id, dedupe_key, "
    "status, raw_status, error_code, error_category, error_detail, payload_encrypted, "
    "received_at, applied, duplicate_count, source) "
    "SELECT m.id, r.id, '', %s, %s, %s, %s, '', '', %s, now(), true, 0, 'webhook' FROM m, r "
    "ON CONFLICT (dedupe_key) DO UPDATE SET duplicate_count = "
    "bench_hand_event.duplicate_count + 1"
)
_SUMMARY = (
    "UPDATE bench_hand_message SET current_status = %s, status_event_key = %s, "
    "error_code = %s, updated_at = now() WHERE id = %s"
)


@functools.cache
def _validator() -> RequestValidator:
    """Twilio's validator with the app's own Twilio token (``SMS_DELIVERY["PROVIDERS"]``)."""
    return RequestValidator(get_provider("twilio").options.auth_tokens[0])


@csrf_exempt
def floor(request):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {FLOOR_TABLE} (body) VALUES (%s)", [request.body])  # noqa: S608
    return HttpResponse(b'{"success": true}', content_type="application/json")


def _verified_and_sealed(request) -> tuple[dict[str, str], str] | None:
    """The form and the sealed request; None if Twilio's signature does not match."""
    body = request.body
    form = dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    # One HMAC, over the URL the bench signs: the SDK's validate() computes two (with and
    # without the port), and the webhook computes one when the URL as called is one of them.
    url = request.build_absolute_uri(STATUS_PATH)
    expected = _validator().compute_signature(url, form)
    if not compare(expected, request.headers.get("X-Twilio-Signature", "")):
        return None
    headers = dict(request.headers)
    sealed = crypto.encrypt_bytes(
        json.dumps({"path": request.get_full_path(), "headers": headers}).encode() + b"\n" + body
    )
    return form, sealed


@csrf_exempt
def hand_written_accept(request):
    if (verified := _verified_and_sealed(request)) is None:
        return HttpResponse(status=403)
    form, sealed = verified
    with connection.cursor() as cursor:
        params = [form.get("AccountSid", ""), request.path, request.content_type or "", sealed, ""]
        cursor.execute(_RAW, params)
    return HttpResponse(b'{"success": true, "deferred": true}', content_type="application/json")


def _key(sid: str, status: str, code: str) -> str:
    """The hand-written views' event key: one per message, status and error code."""
    return f"twilio:{sid}:{status}:{code}:"


def _report(request) -> tuple[str, list, list, list] | None:
    """A verified status callback's values for the hand-written reports: the sealed request's
    parameters, the message's (public id, sid, person, sealed number, sender) and the event's
    (key, status, raw status, code, sealed payload) — the same work for both shapes."""
    if (verified := _verified_and_sealed(request)) is None:
        return None
    form, sealed = verified
    sid, status, to = form["MessageSid"], form["MessageStatus"], form["To"]
    code = form.get("ErrorCode", "")
    person = recipient_hash(to)
    key = _key(sid, status, code)
    raw = [form.get("AccountSid", ""), request.path, request.content_type or "", sealed, person]
    message = [
        "msg_" + secrets.token_hex(10),
        sid,
        person,
        crypto.encrypt(to),
        form.get("From", ""),
    ]
    event = [key, status, status, code, crypto.encrypt_json(form)]
    return key, raw, message, event


@csrf_exempt
def hand_written(request):
    if (report := _report(request)) is None:
        return HttpResponse(status=403)
    key, raw, message, event = report
    status, code = event[1], event[3]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_RAW, raw)
        raw_id = cursor.fetchone()[0]
        cursor.execute(_MESSAGE, message)
        message_id = cursor.fetchone()[0]
        cursor.execute(_EVENT, [message_id, raw_id, *event])
        cursor.execute(_SUMMARY, [status, key, code, message_id])
    return HttpResponse(b'{"success": true}', content_type="application/json")


@csrf_exempt
def hand_written_one_statement(request):
    if (report := _report(request)) is None:
        return HttpResponse(status=403)
    key, raw, message, event = report
    status, code = event[1], event[3]
    with connection.cursor() as cursor:
        cursor.execute(_ONE_STATEMENT, [*raw, *message, status, key, code, *event])
    return HttpResponse(b'{"success": true}', content_type="application/json")


@functools.cache
def _app_rules() -> tuple[Any, ...]:
    """What the app's report path reads besides the request: the precedence list as its
    statement takes it, the statuses that prove a message sent or delivered, its number
    reader, the report statement and the new message's. Imported when first used:
    bench-ingest.sh serves this module from an older revision too, whose app may not have them.
    """
    from delivery.ingest import _IMPLIES_DELIVERED, _IMPLIES_SENT, _PRECEDENCE
    from delivery.recipients import protect
    from delivery.statements import _new_message_sql, _report_sql

    return (
        _PRECEDENCE,
        _IMPLIES_SENT,
        _IMPLIES_DELIVERED,
        protect,
        _report_sql("default"),
        _new_message_sql("default"),
    )


@csrf_exempt
def hand_written_rules(request):
    if (verified := _verified_and_sealed(request)) is None:
        return HttpResponse(status=403)
    form, sealed = verified
    precedence, implies_sent, implies_delivered, protect, report_sql, new_message_sql = _app_rules()
    twilio = get_provider("twilio")
    sid, raw_status, to = form["MessageSid"], form["MessageStatus"], form["To"]
    code = form.get("ErrorCode", "")
    status = str(twilio.statuses.get(raw_status, "unknown"))
    category = str(twilio.errors.category(code))
    key = _key(sid, raw_status, code)
    sender = form.get("From", "")
    now = timezone.now()
    event = {
        "e_provider_event_id": "",
        "e_dedupe_key": key,
        "e_status": status,
        "e_raw_status": raw_status,
        "e_error_code": code,
        "e_error_category": category,
        "e_error_detail": "",
        "e_provider_occurred_at": None,
        "e_payload_encrypted": crypto.encrypt_json(form),
        "e_received_at": now,
        "e_duplicate_count": 0,
        "e_last_duplicate_at": None,
        "e_source": "webhook",
    }
    raw = {
        "r_provider": "twilio",
        "r_account": form.get("AccountSid", ""),
        "r_method": "POST",
        "r_path": request.path,
        "r_content_type": request.content_type or "",
        "r_request_encrypted": sealed,
        "r_signature_valid": True,
        "r_parse_error": "",
        "r_received_at": now,
        "r_pending": False,
    }
    fold = {
        "provider": "twilio",
        "message_id": sid,
        "precedence": precedence,
        "status": status,
        "occurred": None,
        "code": code,
        "key": key,
        "category": category,
        "now": now,
        "when": now,
        "implies_sent": status in implies_sent,
        "implies_delivered": status in implies_delivered,
        "unknown": status == "unknown",
        "sender": sender or None,
        "country": None,
        "segments": None,
        # The number is read only for a message that has none yet, as the app reads it.
        "needs_person": True,
        "person_hash": "",
        "person_encrypted": "",
        "person_country": None,
    }
    with connection.cursor() as cursor:
        cursor.execute(report_sql, {**fold, **event, **raw})
        row = cursor.fetchone()
        if row is not None and row[0]:  # stored, counted, or refused: the statement decided
            return HttpResponse(b'{"success": true}', content_type="application/json")
        person = protect(to)  # read only for a message that has no number yet
        if row is not None:  # a message without its number: again, with this one's
            fold.update(
                needs_person=False,
                person_hash=person.hash,
                person_encrypted=person.encrypted,
                person_country=person.country or None,
            )
            cursor.execute(report_sql, {**fold, **event, **raw})
        else:  # a message it did not know: inserted with its summary
            message = {
                "public_id": "msg_" + secrets.token_hex(10),
                "provider": "twilio",
                "provider_message_id": sid,
                "recipient_hash": person.hash,
                "recipient_encrypted": person.encrypted,
                "destination_country": person.country,
                "recipient_time_zone": "",
                "sender_identity": sender,
                "template_key": "",
                "product_reference": "",
                "current_status": status,
                "status_event_key": key,
                "error_code": code,
                "error_category": category,
                "first_sent_at": now if fold["implies_sent"] else None,
                "delivered_at": now if fold["implies_delivered"] else None,
                "needs_review": fold["unknown"],
                "last_event_at": now,
                "created_at": now,
                "updated_at": now,
                "consent_source": "",
            }  # a column it leaves out is NULL (json_populate_record)
            cursor.execute(
                new_message_sql,
                {
                    "message": json.dumps(message, default=datetime.isoformat),
                    "provider": "twilio",
                    "message_id": sid,
                    **event,
                    "e_applied": True,
                    **raw,
                    "r_recipient_hash": person.hash,
                },
            )
    return HttpResponse(b'{"success": true}', content_type="application/json")


urlpatterns = [
    path("floor/", floor),
    path("hand-written/", hand_written),
    path("hand-written/accept/", hand_written_accept),
    path("hand-written/one-statement/", hand_written_one_statement),
    path("hand-written/rules/", hand_written_rules),
    *demo_urlpatterns,
]
