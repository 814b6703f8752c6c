"""``/webhooks/health/`` for load balancers and ``sms_delivery_health`` for people and cron."""

import io
import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from delivery import health
from delivery.ingest import ingest, register_outbound
from delivery.lifecycle import Status
from delivery.metrics import count_rejection
from delivery.models import Message, MessageEvent
from tests.factories import NormalizedEventFactory as Event
from tests.privacy import numbers_in

pytestmark = pytest.mark.django_db
URL = "/webhooks/health/"


def test_healthy_is_200_without_login_and_writes_nothing():
    client = Client(enforce_csrf_checks=True)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert [q["sql"] for q in queries.captured_queries] == ["SELECT 1"]
    assert "no-cache" in response["Cache-Control"] and not response.cookies
    assert client.head(URL).status_code == 200
    assert client.post(URL).status_code == 405
    assert client.get(URL.rstrip("/")).status_code == 200  # no redirect for a probe without "/"


def test_database_down_is_503(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = Client().get(URL)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}


def test_the_answer_names_no_one():
    ingest([Event(recipient="+14155550100")])
    assert not numbers_in(Client().get(URL).content.decode())


def old(message, hours):
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(hours=hours))


def run(*args):
    out = io.StringIO()
    try:
        call_command("sms_delivery_health", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), str(exc)
    return out.getvalue(), ""


def test_a_quiet_healthy_install_is_ok():
    output, failure = run()
    assert failure == "" and "OK" in output and "twilio: last request never" in output


def test_stuck_messages_and_the_review_queue_fail_the_check():
    ingest([Event(provider_message_id="SM1", status=Status.SENT)])
    old(Message.objects.get(), 13)
    ingest([Event(provider_message_id="SM2", raw_status="partially_delivered", status="unknown")])
    output, failure = run("--max-review", "0", "--max-stuck", "0")
    assert "1 message(s) stuck before a final status" in failure
    assert "1 item(s) in the review queue" in failure
    assert "PROBLEM" in output
    assert run("--max-review", "1", "--max-stuck", "0", "--stuck-hours", "14")[1] == ""


def test_stuck_messages_are_reported_not_judged_unless_asked():
    ingest([Event(provider_message_id="SM1", status=Status.SENT)])
    old(Message.objects.get(), 13)
    output, failure = run()
    assert failure == "" and "stuck: 1 messages of the last 7 days not final after 12 h" in output


def test_only_the_last_weeks_stuck_messages_are_counted():
    """A carrier that never reports a final status must not make the count grow for ever."""
    ingest([Event(provider_message_id="SM1", status=Status.SENT)])
    old(Message.objects.get(), 24 * 8)
    assert run("--max-stuck", "0")[1] == ""
    assert "1 message(s) stuck" in run("--max-stuck", "0", "--stuck-window-days", "9")[1]


def test_a_provider_that_went_silent_fails_the_check():
    message = register_outbound(provider="twilio", provider_message_id="SM9", to="+14155550100")
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=30))
    assert "twilio: no request since messages were sent" in run()[1]
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert run()[1] == ""  # too recent to expect a report


def test_lag_and_refused_signatures_are_reported(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    now = timezone.now()
    ingest([Event(provider_message_id="SM3", provider_occurred_at=now - timedelta(minutes=10))])
    for _ in range(3):
        count_rejection("twilio", "signature_invalid")
    output, failure = run("--json")
    data = json.loads(output)
    [twilio] = [p for p in data["providers"] if p["name"] == "twilio"]
    assert 590 < twilio["lag_seconds_p95"] < 700 and twilio["refused_recent"] == 3
    assert twilio["requests_recent"] == 0  # ingest() without a raw request
    assert "reports arrive" in failure and "refused for their signature" in failure
    assert data["ok"] is False


def test_the_report_reads_a_bounded_number_of_rows(monkeypatch):
    monkeypatch.setattr(health, "COUNT_CAP", 3)
    for i in range(5):
        ingest([Event(provider_message_id=f"SM{i}", raw_status="weird", status="unknown")])
    assert health.report().review_messages == 3
    assert MessageEvent.objects.count() == 5


def test_requests_waiting_for_their_task_fail_the_check():
    """Deferred processing with its workers down: stored requests pile up unread."""
    from delivery.models import RawWebhook

    raw = RawWebhook.objects.create(provider="twilio", method="POST", path="/", pending=True)
    assert run()[1] == ""  # just stored: its task has time
    RawWebhook.objects.filter(pk=raw.pk).update(received_at=timezone.now() - timedelta(minutes=6))
    output, failure = run()
    assert "1 stored request(s) waiting for their task" in failure
    assert "waiting for a task: 1 stored requests" in output
    assert run("--max-waiting", "1")[1] == ""
