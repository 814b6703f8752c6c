"""Every webhook endpoint, fuzzed: no input breaks a rule of the pipeline (tests/fuzzing.py).

``make test`` runs a fixed set of examples per endpoint (derandomized, so CI is repeatable).
A longer run explores new inputs each time:
``SMS_DELIVERY_FUZZ_EXAMPLES=2000 .venv/bin/pytest tests/test_fuzz.py`` (and against a live
server on PostgreSQL: ``scripts/fuzz-live.sh``, see docs/reliability.md).
"""

import os

import pytest
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from tests.fuzzing import (
    ENDPOINTS,
    PROVIDER_SETTINGS,
    Judge,
    build,
    detail_of,
    outcome,
    specs,
    table_counts,
)

EXAMPLES = int(os.environ.get("SMS_DELIVERY_FUZZ_EXAMPLES", "40"))
LONG_RUN = "SMS_DELIVERY_FUZZ_EXAMPLES" in os.environ

pytestmark = pytest.mark.django_db


@pytest.fixture
def every_provider(sms_delivery_settings):
    sms_delivery_settings["PROVIDERS"] = {name: dict(o) for name, o in PROVIDER_SETTINGS.items()}


def send(client: Client, request):
    headers = {k: v for k, v in request.headers.items() if k != "Content-Type"}
    content_type = request.headers.get("Content-Type", "")
    # As a server passes it on, with or without a body (the test client drops it without one).
    extra = {"CONTENT_TYPE": content_type} if content_type else {}
    return client.generic(
        request.method,
        request.path,
        request.body,
        content_type=content_type,
        headers=headers,
        **extra,
    )


@pytest.mark.parametrize("provider, kind", ENDPOINTS)
def test_no_request_breaks_a_rule_of_the_pipeline(provider, kind, every_provider):
    """Never a 5xx (but Vonage's documented one), nothing written for a forgery, nothing
    partial, every verified request kept, no number in an answer."""
    client = Client(raise_request_exception=False)  # a crash is a 500 here, not an exception
    judge = Judge()

    @hypothesis_settings(
        max_examples=EXAMPLES,
        derandomize=not LONG_RUN,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=specs(provider, kind))
    def one_request(spec):
        request = build(spec, "http://testserver")
        before = table_counts()
        response = send(client, request)
        result = outcome(response.status_code, detail_of(response.content), before, table_counts())
        problems = judge.judge(request, result)
        assert not problems, (problems, request, result)

    one_request()
    print(f"{provider} {kind}: {dict(judge.counts)}")
    assert judge.counts["signed"] and judge.counts["unsigned"]
