"""The health checks offered to django-health-check (``delivery.contrib.health_check``)."""

from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

pytest.importorskip("health_check")

from health_check.exceptions import ServiceUnavailable, ServiceWarning  # noqa: E402

from delivery.contrib import health_check as checks  # noqa: E402
from delivery.ingest import ingest, register_outbound  # noqa: E402
from delivery.lifecycle import Status  # noqa: E402
from delivery.models import Message  # noqa: E402
from tests.factories import NormalizedEventFactory as Event  # noqa: E402

pytestmark = pytest.mark.django_db

EVERY_CHECK = [
    checks.DeliveryDatabase(),
    checks.StuckMessages(),
    checks.ReviewQueue(),
    checks.SilentProviders(),
    checks.ReportLag(),
    checks.RefusedSignatures(),
]


def test_a_healthy_install_passes_every_check():
    for check in EVERY_CHECK:
        check.run()


def test_an_unreachable_database_is_unavailable(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("down")

    monkeypatch.setattr(connection, "cursor", refuse)
    with pytest.raises(ServiceUnavailable):
        checks.DeliveryDatabase().run()


def test_stuck_messages_and_review_are_warnings_without_a_number():
    ingest([Event(provider_message_id="SM1", status=Status.SENT, recipient="+14155550100")])
    Message.objects.update(created_at=timezone.now() - timedelta(hours=13))
    with pytest.raises(ServiceWarning, match="1 message") as stuck:
        checks.StuckMessages().run()
    assert "415" not in str(stuck.value)
    checks.StuckMessages(max_stuck=1).run()
    ingest([Event(provider_message_id="SM2", raw_status="odd", status="unknown")])
    with pytest.raises(ServiceWarning, match="review queue"):
        checks.ReviewQueue(max_items=0).run()


def test_a_silent_provider_is_a_warning():
    register_outbound(provider="twilio", provider_message_id="SM3", to="+14155550100")
    Message.objects.update(created_at=timezone.now() - timedelta(minutes=30))
    with pytest.raises(ServiceWarning, match="twilio"):
        checks.SilentProviders().run()


def test_the_view_of_django_health_check_runs_them(rf):
    import asyncio

    from health_check.views import HealthCheckView

    view = HealthCheckView.as_view(checks=["delivery.contrib.health_check.StuckMessages"])
    request = rf.get("/ht/", headers={"Accept": "application/json"})
    response = asyncio.run(view(request))
    assert response.status_code == 200 and b"StuckMessages" in response.content
