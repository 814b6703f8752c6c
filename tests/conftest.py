"""Shared fixtures; the PostgreSQL pass refuses to run on anything but PostgreSQL.

Every test also runs under :func:`no_numbers_in_logs`: a phone number of the test data written to
any log, in any format, fails the test that wrote it.
"""

import logging
import os

import hypothesis
import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from tests.privacy import numbers_in

# No deadline for an example: on a shared, noisy machine one slow example is not a failure
# (timings are measured by the benchmarks, never asserted). In CI every run draws the same
# examples, so a red run can be run again as it was; elsewhere each run draws new ones and a
# failure prints the line that reproduces it.
hypothesis.settings.register_profile(
    "project", deadline=None, derandomize=os.environ.get("CI") == "true", print_blob=True
)
hypothesis.settings.load_profile("project")

TEST_SETTINGS = {
    "HASH_KEY": "test-hash-key",
    "ENCRYPTION_KEYS": ["test-encryption-key"],
    "PROVIDERS": {
        "twilio": {
            "ACCOUNT_SID": "AC00000000000000000000000000000000",
            "AUTH_TOKENS": ["12345", "rotated-token-67890"],
        },
    },
}


def pytest_collection_modifyitems(config, items):
    """Skip ``postgres`` tests on SQLite, unless this pass must be PostgreSQL (then fail)."""
    on_postgres = connection.vendor == "postgresql"
    if os.environ.get("SMS_DELIVERY_REQUIRE_POSTGRES") and not on_postgres:
        pytest.exit(
            "SMS_DELIVERY_REQUIRE_POSTGRES is set but the database is "
            f"{connection.vendor}; refusing to skip the PostgreSQL tests.",
            returncode=3,
        )
    skip = pytest.mark.skip(reason="needs PostgreSQL (runs in the PostgreSQL pass of make test)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip)


@pytest.fixture
def still_clock(monkeypatch):
    """``timezone.now()`` stands still: the hourly counters (``delivery.metrics``) split a count
    between two keys when an hour turns in the middle of a test."""
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    return now


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache: the console's filter choices (cached for minutes)
    and the Plivo nonce cache must not carry one test's data into the next."""
    cache.clear()


@pytest.fixture(autouse=True)
def sms_delivery_settings(settings):
    settings.SMS_DELIVERY = {**TEST_SETTINGS, "PROVIDERS": dict(TEST_SETTINGS["PROVIDERS"])}
    settings.DEBUG = False
    return settings.SMS_DELIVERY


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


#: Loggers that do not propagate to the root in the demo settings, and the root itself.
_WATCHED = ("", "delivery", "providers", "support_console", "django", "django.server")


@pytest.fixture(autouse=True)
def no_numbers_in_logs():
    """Capture every log record at DEBUG, tracebacks included; fail on a number in clear."""
    capture = _Capture()
    loggers = [logging.getLogger(name) for name in _WATCHED]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(capture)
        logger.setLevel(logging.DEBUG)
    yield capture
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(capture)
        logger.setLevel(level)
    leaks = [(line, numbers_in(line)) for line in capture.lines if numbers_in(line)]
    if leaks:
        pytest.fail(f"phone numbers in clear in the logs: {leaks[:3]}", pytrace=False)


@pytest.fixture
def deferred_on_dummy_tasks(settings, sms_delivery_settings):
    """Deferred mode on the task framework's Dummy backend: what is enqueued is kept, nothing
    runs it; a test runs the drains itself."""
    from delivery import deferred

    sms_delivery_settings["PROCESSING"] = "deferred"
    framework = deferred.task.__module__.split(".")[0]  # "django" (6.x) or "django_tasks"
    prefix = "django.tasks" if framework == "django" else "django_tasks"
    settings.TASKS = {"default": {"BACKEND": f"{prefix}.backends.dummy.DummyBackend"}}


@pytest.fixture
def status_changes():
    """``(previous status, status)`` of each ``message_status_changed`` sent during the test."""
    from delivery.signals import message_status_changed

    seen = []

    def receiver(message, previous_status, status, **kwargs):
        seen.append((previous_status, status))

    message_status_changed.connect(receiver)
    yield seen
    message_status_changed.disconnect(receiver)
