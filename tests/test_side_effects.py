"""Seed 001's order-confirmation case: one email fallback when a message ends in failure,
exactly once, however the failure reports arrive and however the work is run
(``delivery.once`` and the ``message_status_changed`` rule)."""

import itertools
import random

import pytest
from django.core import mail
from django.core.mail import send_mail
from django.db import transaction
from django.dispatch import receiver

from delivery import deferred, once
from delivery.ingest import ingest
from delivery.lifecycle import FAILURE_STATUSES, Status
from delivery.models import Message, SideEffect
from delivery.signals import message_status_changed
from tests.factories import NormalizedEventFactory as Event

pytestmark = pytest.mark.django_db

task = deferred.task  # the task framework deferred processing runs on
FRAMEWORK = task.__module__.split(".")[0]
BACKENDS = "django.tasks.backends" if FRAMEWORK == "django" else "django_tasks.backends"

FAILURES = [
    Event(status=Status.FAILED, raw_status="failed", error_code="30008"),
    Event(status=Status.UNDELIVERED, raw_status="undelivered", error_code="30003"),
    Event(status=Status.EXPIRED, raw_status="expired", error_code="30001"),
]


@task()
def send_fallback_email(message_id: int) -> bool:
    """The recipe of docs (README "Side effects, once"): claim and send in one transaction."""
    with transaction.atomic():
        if not once.claim(message_id, "order-fallback-email"):
            return False
        message = Message.objects.get(pk=message_id)
        send_mail(
            "Your order confirmation",
            f"We could not text you about order {message.product_reference}.",
            "shop@example.com",
            ["customer@example.com"],
        )
    return True


@pytest.fixture
def fallback():
    """The receiver: on the transition into failure, enqueue the email task (after commit)."""

    @receiver(message_status_changed, weak=False)
    def on_status(sender, message, previous_status, status, **kwargs):
        if status in FAILURE_STATUSES and previous_status not in FAILURE_STATUSES:
            transaction.on_commit(lambda: send_fallback_email.enqueue(message.pk))

    yield
    message_status_changed.disconnect(on_status)


def use_backend(settings, name):
    settings.TASKS = {"default": {"BACKEND": f"{BACKENDS}.{name}"}}


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_three_failures_in_any_order_send_one_email(
    order, fallback, settings, django_capture_on_commit_callbacks
):
    use_backend(settings, "immediate.ImmediateBackend")
    reports = [Event(status=Status.SENT)] + [FAILURES[i] for i in order]
    with django_capture_on_commit_callbacks(execute=True):
        for report in reports + reports[1:]:  # every failure delivered twice
            ingest([report])
    assert len(mail.outbox) == 1 and SideEffect.objects.count() == 1
    assert Message.objects.get().current_status == Status.UNDELIVERED


def test_a_task_run_twice_sends_once(fallback, settings, django_capture_on_commit_callbacks):
    use_backend(settings, "dummy.DummyBackend")
    from importlib import import_module

    tasks = import_module(FRAMEWORK + (".tasks" if FRAMEWORK == "django" else ""))
    queued = tasks.task_backends["default"]
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        for report in random.Random(2).sample(FAILURES, 3):
            ingest([report])
    (result,) = queued.results  # enqueued once: one transition into failure
    assert send_fallback_email.call(*result.args) is True
    assert send_fallback_email.call(*result.args) is False  # redelivered by the backend
    assert len(mail.outbox) == 1


def test_a_failed_send_leaves_the_claim_unmade_for_the_retry(monkeypatch):
    ingest([FAILURES[0]])
    message = Message.objects.get()
    monkeypatch.setattr(
        "tests.test_side_effects.send_mail", lambda *a, **k: (_ for _ in ()).throw(OSError())
    )
    with pytest.raises(OSError):
        send_fallback_email.call(message.pk)
    assert not SideEffect.objects.exists()
    monkeypatch.undo()
    assert send_fallback_email.call(message.pk) is True and len(mail.outbox) == 1
