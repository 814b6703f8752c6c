"""Delivery analytics (``delivery.analytics``): the figures of a hand-built data set against
hand-computed ones, the rollup's rebuild, and the console page."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from delivery import analytics
from delivery.lifecycle import ErrorCategory, Status
from delivery.models import DeliveryRollup, Message
from support_console.groups import AGENT
from tests.factories import MessageFactory
from tests.test_support_console import user_in

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
START, END = NOW - timedelta(days=1), NOW  # "this window"; the one before is the day before


def make(n, *, country, status, hours_ago, provider="twilio", category="", code="", latency=None):
    """``n`` messages created ``hours_ago`` before NOW, now in ``status``."""
    created = NOW - timedelta(hours=hours_ago)
    for _ in range(n):
        message = MessageFactory(
            provider=provider,
            destination_country=country,
            current_status=status,
            error_category=category,
            error_code=code,
            template_key="order_shipped",
        )
        sent = created + timedelta(seconds=5)
        Message.objects.filter(pk=message.pk).update(
            created_at=created,
            first_sent_at=sent if status != Status.ACCEPTED else None,
            delivered_at=sent + timedelta(seconds=latency) if latency is not None else None,
        )


@pytest.fixture
def data():
    undelivered = dict(
        status=Status.UNDELIVERED, category=ErrorCategory.UNREACHABLE_HANDSET, code="30003"
    )
    # This window: GB 10 delivered + 5 undelivered; US 8 delivered + 2 failed (blocked) + 3
    # waiting ("sent"); FR 4 sent and never a receipt (its carrier sends none).
    make(10, country="GB", status=Status.DELIVERED, hours_ago=3, latency=4)
    make(5, country="GB", hours_ago=3, **undelivered)
    make(8, country="US", status=Status.DELIVERED, hours_ago=5, latency=40)
    make(
        2, country="US", status=Status.FAILED, hours_ago=5, category=ErrorCategory.CARRIER_FILTERING
    )
    make(3, country="US", status=Status.SENT, hours_ago=1)
    make(4, country="FR", status=Status.SENT, hours_ago=2, provider="vonage")
    # The window before: GB 18 delivered + 2 undelivered.
    make(18, country="GB", status=Status.DELIVERED, hours_ago=30, latency=400)
    make(2, country="GB", hours_ago=30, **undelivered)
    analytics.rebuild(NOW - timedelta(days=3), NOW)


def row(report, dimension, key):
    return next(r for r in report.breakdowns[dimension] if r.key == key)


def test_figures_match_the_hand_computed_ones(data):
    report = analytics.report(START, END)
    total = report.total.now
    assert (total.total, total.delivered, total.failed, total.waiting) == (32, 18, 7, 7)
    assert total.rate == pytest.approx(18 / 25)
    assert total.reasons == {
        ErrorCategory.UNREACHABLE_HANDSET: 5,
        ErrorCategory.CARRIER_FILTERING: 2,
    }
    gb = row(report, "country", "GB")
    assert gb.now.rate == pytest.approx(10 / 15) and gb.before.rate == pytest.approx(18 / 20)
    assert gb.change == pytest.approx((10 / 15 - 18 / 20) * 100)
    us = row(report, "country", "US")
    assert us.now.rate == pytest.approx(0.8) and us.now.waiting == 3
    # Sent, never a receipt: "not reported", not a false 0 %.
    fr = row(report, "country", "FR")
    assert fr.now.rate is None and not fr.now.receipts_reported
    assert row(report, "provider", "vonage").now.rate is None
    assert row(report, "template", "order_shipped").now.total == 32
    # Receipt times: 10 at 4 s and 8 at 40 s; the median is in the (2, 5] bucket, p95 in (30, 60].
    assert 2 < report.latency_p50 <= 5 and 30 < report.latency_p95 <= 60
    assert 300 < report.latency_before_p50 <= 600


def test_a_rebuild_follows_the_messages_as_they_are_now(data):
    """Replay and reconciliation change statuses; the next rebuild of those hours counts them
    as they are (and rebuilding twice counts nothing twice)."""
    Message.objects.filter(destination_country="FR").update(
        current_status=Status.DELIVERED, delivered_at=NOW
    )
    analytics.rebuild(NOW - timedelta(days=3), NOW)
    analytics.rebuild(NOW - timedelta(hours=4), NOW)
    report = analytics.report(START, END)
    assert row(report, "country", "FR").now.rate == 1.0
    assert report.total.now.total == 32


def test_histogram_quantiles():
    assert analytics.histogram_quantile({}, 0.5) is None
    # 4 messages in (5, 10]: the median is half-way through it.
    assert analytics.histogram_quantile({3: 4}, 0.5) == pytest.approx(7.5)
    assert analytics.histogram_quantile({len(analytics.LATENCY_BOUNDS): 1}, 0.9) == 86400


def test_the_page_draws_the_figures_without_numbers_in_a_few_queries(client, data, settings):
    client.force_login(user_in(AGENT, "agent"))
    index = client.get(reverse("admin:index")).content.decode()
    assert "Delivery analytics" in index
    url = reverse("admin:sms_delivery_console_deliveryanalytics_changelist")
    params = {"window": "custom", "from": "2026-11-30", "to": "2026-11-30"}
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url, params)
    assert page.status_code == 200 and len(queries) < 20
    html = page.content.decode()
    assert "no receipts reported" in html and "<svg" in html
    assert "66.7 %" in html and "90.0 %" in html  # GB now, and before (in the table)
    for message in Message.objects.all():
        assert message.public_id not in html and message.provider_message_id not in html
    assert "5017122661" not in html and "2661" in html  # our sender number, masked
    assert client.get(url, {"window": "30d"}).status_code == 200
    assert client.get(url, {"window": "nonsense"}).status_code == 200  # falls back to 7 days


def test_the_page_says_when_the_counts_are_not_rebuilt(client):
    client.force_login(user_in(AGENT, "agent"))
    url = reverse("admin:sms_delivery_console_deliveryanalytics_changelist")
    assert 'id="stale-rollup"' not in client.get(url).content.decode()  # nothing to count
    make(3, country="GB", status=Status.DELIVERED, hours_ago=5)
    Message.objects.update(created_at=timezone.now() - timedelta(hours=5))
    html = client.get(url).content.decode()
    assert 'id="stale-rollup"' in html and "sms_delivery_rollup" in html
    assert not DeliveryRollup.objects.exists()
    # Rebuilt just now: a quiet system (nothing in five hours) is not stale.
    analytics.rebuild(timezone.now() - timedelta(days=1), timezone.now())
    assert 'id="stale-rollup"' not in client.get(url).content.decode()


def test_a_message_waiting_past_the_horizon_counts_as_not_delivered(data):
    """A carrier that drops messages without a word lowers the rate: 'sent' 20 hours ago and
    still no receipt is overdue; 'sent' an hour ago is only waiting."""
    make(5, country="US", status=Status.SENT, hours_ago=20)
    analytics.rebuild(NOW - timedelta(days=3), NOW)
    us = row(analytics.report(START, END), "country", "US")
    assert us.now.waiting == 8 and us.now.overdue == 5
    assert us.now.rate == pytest.approx(8 / (10 + 5))
