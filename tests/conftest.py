"""Shared fixtures; the PostgreSQL pass refuses to run on anything but PostgreSQL."""

import os

import pytest
from django.db import connection

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


@pytest.fixture(autouse=True)
def sms_delivery_settings(settings):
    settings.SMS_DELIVERY = {**TEST_SETTINGS, "PROVIDERS": dict(TEST_SETTINGS["PROVIDERS"])}
    settings.DEBUG = False
    return settings.SMS_DELIVERY
