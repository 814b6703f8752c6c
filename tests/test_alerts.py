"""Alert rules (``delivery.alerts``): each fires on a synthetic window, stays quiet on a normal
one, fires once per incident and says when it resolves; notifiers; the Prometheus endpoint."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import django
import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from delivery import alerts, analytics, metrics
from delivery.lifecycle import ErrorCategory, Status
from delivery.models import Alert, Message, RawWebhook
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


def make(n, *, country, status, hours_ago, category=""):
    created = timezone.now() - timedelta(hours=hours_ago)
    for _ in range(n):
        message = MessageFactory(
            destination_country=country, current_status=status, error_category=category
        )
        Message.objects.filter(pk=message.pk).update(created_at=created)


def normal_week():
    """Seven days of GB at 95 % and US at 90 %, and the last hours the same."""
    for day in range(1, 8):
        make(19, country="GB", status=Status.DELIVERED, hours_ago=24 * day)
        make(1, country="GB", status=Status.UNDELIVERED, hours_ago=24 * day)
        make(9, country="US", status=Status.DELIVERED, hours_ago=24 * day)
        make(1, country="US", status=Status.FAILED, hours_ago=24 * day)
    make(57, country="GB", status=Status.DELIVERED, hours_ago=2)
    make(3, country="GB", status=Status.UNDELIVERED, hours_ago=2)
    make(54, country="US", status=Status.DELIVERED, hours_ago=2)
    make(6, country="US", status=Status.FAILED, hours_ago=2)


def evaluate():
    analytics.rebuild(timezone.now() - timedelta(days=9), timezone.now())
    return alerts.evaluate()


@pytest.fixture
def notified(sms_delivery_settings):
    seen = []

    def receiver(sender, alert, resolved, **kwargs):
        seen.append((alert.rule, alert.key, resolved))

    alerts.alert_changed.connect(receiver)
    yield seen
    alerts.alert_changed.disconnect(receiver)


def test_a_normal_week_is_quiet(notified):
    normal_week()
    outcome = evaluate()
    assert outcome.fired == [] and notified == []


def test_a_degraded_route_fires_once_and_resolves_once(notified):
    normal_week()
    make(
        30,
        country="GB",
        status=Status.UNDELIVERED,
        hours_ago=1,
        category=ErrorCategory.CARRIER_FILTERING,
    )
    outcome = evaluate()
    assert [(a.rule, a.key) for a in outcome.fired] == [("rate_drop", "country:GB")]
    assert "GB: 63%" in outcome.fired[0].summary and "95%" in outcome.fired[0].summary
    assert evaluate().fired == []  # still the same incident: no second notification
    assert Alert.objects.get().resolved_at is None
    Message.objects.filter(
        current_status=Status.UNDELIVERED, created_at__gt=timezone.now() - timedelta(hours=1.5)
    ).update(current_status=Status.DELIVERED)
    outcome = evaluate()  # gone, but not for long enough: still the same incident
    assert outcome.resolved == [] and [a.key for a in outcome.still_open] == ["country:GB"]
    outcome = alerts.evaluate(timezone.now() + alerts.RESOLVE_AFTER)
    assert [a.key for a in outcome.resolved] == ["country:GB"]
    assert notified == [("rate_drop", "country:GB", False), ("rate_drop", "country:GB", True)]


def test_three_messages_never_page_anyone(notified):
    normal_week()
    Message.objects.filter(created_at__gt=timezone.now() - timedelta(hours=3)).delete()
    make(3, country="GB", status=Status.UNDELIVERED, hours_ago=1)
    assert evaluate().fired == []


def test_signature_failures_fire(notified):
    make(1, country="GB", status=Status.DELIVERED, hours_ago=1)
    for _ in range(21):
        metrics.count_rejection("twilio", "signature_invalid")
    assert [a.rule for a in evaluate().fired] == ["signature_failures"]


def test_sustained_webhook_failures_fire():
    for _ in range(11):
        metrics.count_rejection("twilio", "storage_unavailable")
    assert [a.rule for a in evaluate().fired] == ["webhook_failures"]


def test_unknown_statuses_fire():
    for _ in range(11):
        message = MessageFactory(current_status=Status.UNKNOWN, needs_review=True)
        Message.objects.filter(pk=message.pk).update(last_event_at=timezone.now())
    assert [a.rule for a in evaluate().fired] == ["unknown_statuses"]


def test_duplicates_fire():
    metrics.count("duplicate", "twilio", 60)
    assert [a.rule for a in evaluate().fired] == ["duplicates"]


def test_processing_lag_fires_when_stored_requests_wait():
    RawWebhook.objects.create(
        provider="twilio",
        method="POST",
        path="/webhooks/twilio/status/",
        pending=True,
        received_at=timezone.now() - timedelta(minutes=10),
    )
    assert [(a.rule, a.key) for a in evaluate().fired] == [("processing_lag", "deferred")]


def test_a_silent_provider_fires():
    message = MessageFactory(registered_at=timezone.now())
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=30))
    assert [a.rule for a in evaluate().fired] == ["provider_silent"]


def test_notifiers_log_mail_and_post(sms_delivery_settings, settings, caplog):
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    # Django 6 takes addresses; (name, address) pairs are deprecated there, the form of 5.2.
    settings.ADMINS = (
        ["ops@example.com"] if django.VERSION >= (6,) else [("Ops", "ops@example.com")]
    )
    sms_delivery_settings["ALERT_NOTIFIERS"] = [
        "delivery.alerts.log_notifier",
        "delivery.alerts.mail_admins_notifier",
        "delivery.alerts.webhook_notifier",
    ]
    sms_delivery_settings["ALERT_WEBHOOK_URL"] = f"http://127.0.0.1:{server.server_port}/hook"
    metrics.count("duplicate", "twilio", 60)
    evaluate()
    server.server_close()
    assert "ALERT [duplicates]" in caplog.text
    assert len(mail.outbox) == 1 and "duplicates" in mail.outbox[0].subject
    assert received[0]["rule"] == "duplicates" and received[0]["state"] == "firing"


# -- the Prometheus endpoint ------------------------------------------------------------------


def test_metrics_are_off_unless_a_token_is_set(client):
    assert client.get(reverse("sms_delivery:metrics")).status_code == 404


def test_metrics_need_the_token_and_name_no_one(client, sms_delivery_settings):
    sms_delivery_settings["METRICS_TOKEN"] = "s3cret-token"
    url = reverse("sms_delivery:metrics")
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    message = MessageFactory(recipient="+14155550100")
    analytics.rebuild(timezone.now() - timedelta(hours=2), timezone.now())
    metrics.count_rejection("twilio", "signature_invalid")
    response = client.get(url, headers={"Authorization": "Bearer s3cret-token"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'sms_delivery_webhook_problems{provider="twilio",reason="signature_invalid"} 1.0' in text
    assert 'sms_delivery_messages_24h{provider="twilio",status="accepted"} 1.0' in text
    assert "sms_delivery_review_queue 0.0" in text
    assert "4155550100" not in text and message.public_id not in text
    assert message.provider_message_id not in text


def test_a_route_whose_receipts_stop_stays_alerted():
    """Messages go out and stay 'sent': not a 0 % rate, but not a recovery either."""
    normal_week()
    make(60, country="GB", status=Status.SENT, hours_ago=1)
    Message.objects.filter(
        destination_country="GB", created_at__gt=timezone.now() - timedelta(hours=3)
    ).exclude(current_status=Status.SENT).delete()
    (alert,) = evaluate().fired
    assert alert.key == "country:GB" and "no delivery receipt at all" in alert.summary


def test_a_sender_number_is_masked_in_alerts(notified, monkeypatch):
    monkeypatch.setattr(alerts, "RATE_DIMENSIONS", ("sender",))  # judged alone here
    normal_week()  # every message from the factory's sender, +15017122661
    make(30, country="GB", status=Status.UNDELIVERED, hours_ago=1)
    (alert,) = evaluate().fired
    assert "5017122661" not in f"{alert.key} {alert.summary}" and "2661" in alert.key


def test_two_evaluations_at_once_open_one_alert(notified, monkeypatch):
    """The second run finds the alert opened meanwhile (the unique index): it skips it."""
    normal_week()
    make(30, country="GB", status=Status.UNDELIVERED, hours_ago=1)
    analytics.rebuild(timezone.now() - timedelta(days=9), timezone.now())
    real = alerts.findings

    def opened_meanwhile(now=None):
        found = real(now)
        Alert.objects.create(rule=found[0].rule, key=found[0].key, summary="by the other run")
        return found

    monkeypatch.setattr(alerts, "findings", opened_meanwhile)
    outcome = alerts.evaluate()
    assert outcome.fired == [] and Alert.objects.count() == 1 and notified == []


def test_metrics_tokens_rotate_and_the_scheme_is_checked(client, sms_delivery_settings):
    sms_delivery_settings["METRICS_TOKEN"] = ["new-token", "old-token"]
    url = reverse("sms_delivery:metrics")
    assert client.get(url, headers={"Authorization": "bearer old-token"}).status_code == 200
    assert client.get(url, headers={"Authorization": "new-token"}).status_code == 401
    assert client.post(url).status_code == 405
    sms_delivery_settings["METRICS_TOKEN"] = None
    assert client.post(url).status_code == 404  # off: as if it did not exist


def test_transitions_are_counted_when_metrics_are_on(
    client, sms_delivery_settings, django_capture_on_commit_callbacks
):
    from tests.fixtures import twilio
    from tests.providers.test_twilio import post

    sms_delivery_settings["METRICS_TOKEN"] = "s3cret-token"
    with django_capture_on_commit_callbacks(execute=True):
        for word in ("sent", "delivered"):
            assert post(client, twilio.callback(word)).status_code == 200
    text = client.get(
        reverse("sms_delivery:metrics"), headers={"Authorization": "Bearer s3cret-token"}
    ).content.decode()
    assert 'sms_delivery_transitions{provider="twilio",status="delivered"} 1.0' in text


def test_a_count_is_one_cache_call_and_the_hours_first_creates_the_counter(
    monkeypatch, still_clock
):
    from django.core.cache import cache

    calls = []
    for name in ("add", "incr"):
        real = getattr(cache, name)
        monkeypatch.setattr(
            cache, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a)
        )
    metrics.count("duplicate", "twilio", 2)  # the hour's first: created, with its lifetime
    metrics.count("duplicate", "twilio")
    assert calls == ["incr", "add", "incr"]
    assert metrics.counted("duplicate", "twilio") == 3


def test_a_counter_another_process_created_meanwhile_is_added_to(monkeypatch):
    from django.core.cache import cache

    real_add = cache.add

    def another_process_first(key, value, timeout):
        assert timeout == metrics._TTL
        real_add(key, 5, timeout)  # its first count lands between our incr and add
        return real_add(key, value, timeout)

    monkeypatch.setattr(cache, "add", another_process_first)
    metrics.count("duplicate", "twilio", 2)
    assert metrics.counted("duplicate", "twilio") == 7


def test_monitoring_checks(sms_delivery_settings, monkeypatch):
    from delivery import checks

    assert checks.check_monitoring() == []  # nothing configured, nothing to say
    sms_delivery_settings["METRICS_TOKEN"] = "t"
    ids = {problem.id for problem in checks.check_monitoring()}
    assert ids == {checks.Codes.COUNTERS_NOT_SHARED}  # the tests' cache is per process
    monkeypatch.setattr(checks, "find_spec", lambda name: None)
    ids = {problem.id for problem in checks.check_monitoring()}
    assert checks.Codes.METRICS_CLIENT_MISSING in ids
