"""What keeps the console fast at a million messages, checked at a small size.

The timings themselves are measured by ``make bench-console`` (docs/performance.md), never
asserted here: these tests pin down the properties the timings rest on. Every page runs the same
queries whatever the table size; no count is unbounded or ordered; filter choices come from an
index skip scan on PostgreSQL, not a DISTINCT over the table; "Show counts" is off.
"""

import io

import pytest
from django.contrib import admin
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from delivery.models import InboundMessage, Message
from support_console import filters
from support_console.filters import CachedDistinctFilter, distinct_values

pytestmark = pytest.mark.django_db

LISTS = [
    ("sms_delivery_message", {}),
    ("sms_delivery_message", {"current_status__exact": "delivered"}),
    ("sms_delivery_message", {"final": "no"}),
    ("sms_delivery_message", {"destination_country": "GB"}),
    ("sms_delivery_message", {"provider": "vonage"}),
    ("sms_delivery_message", {"sender_identity": "ACME"}),
    ("sms_delivery_message", {"template_key": "otp_login"}),
    ("sms_delivery_message", {"needs_review": "yes"}),
    ("sms_delivery_message", {"p": "2"}),
    ("sms_delivery_rawwebhook", {}),
    ("sms_delivery_rawwebhook", {"parse_failed": "yes"}),
    ("sms_delivery_rawwebhook", {"provider": "plivo"}),
    ("sms_delivery_inboundmessage", {}),
    ("sms_delivery_inboundmessage", {"keyword": "STOP"}),
]


def seed(messages):
    call_command("sms_delivery_seed", messages=messages, seed=4, stdout=io.StringIO())


def queries(client, url, params):
    client.get(url, params)  # the filter-choice cache warm, as it is between expiries
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return [q["sql"] for q in captured.captured_queries]


@pytest.fixture
def few_and_many(admin_client):
    """Each list's queries with 12 messages, then with 120 (more than two pages)."""
    seed(12)
    urls = [(reverse(f"admin:{name}_changelist"), params) for name, params in LISTS]
    few = [queries(admin_client, url, params) for url, params in urls]
    seed(120)
    InboundMessage.objects.bulk_create(
        InboundMessage(provider="twilio", provider_message_id=f"SM{i}", keyword="STOP")
        for i in range(150)
    )
    many = [queries(admin_client, url, params) for url, params in urls]
    return list(zip(LISTS, few, many, strict=True))


def test_every_list_runs_the_same_queries_at_any_size(few_and_many):
    for (name, params), few, many in few_and_many:
        assert len(many) == len(few), (name, params)


def test_no_count_is_unbounded_or_ordered(few_and_many):
    """A count is ``COUNT(*)`` of at most CAP + 1 rows, and without the list's ORDER BY (which
    would make PostgreSQL walk the date index instead of the filter's own)."""
    for (name, params), _, many in few_and_many:
        counts = [sql for sql in many if "COUNT(" in sql.upper()]
        assert counts, (name, params)
        for sql in counts:
            assert "LIMIT 10001" in sql and "ORDER BY" not in sql.upper(), (name, params, sql)


def test_no_list_reads_the_distinct_values_of_a_whole_table(few_and_many):
    for (name, params), _, many in few_and_many:
        assert not any("DISTINCT" in sql.upper() for sql in many), (name, params)


def test_a_message_page_runs_the_same_queries_however_many_messages_exist(admin_client):
    seed(12)
    message = Message.objects.order_by("pk").first()
    url = reverse("admin:sms_delivery_message_change", args=[message.pk])
    few = queries(admin_client, url, {})
    seed(120)
    assert len(queries(admin_client, url, {})) == len(few)


def test_show_counts_is_off_even_when_asked_for(admin_client):
    seed(12)
    url = reverse("admin:sms_delivery_message_changelist")
    assert len(queries(admin_client, url, {"_facets": "True"})) == len(
        queries(admin_client, url, {})
    )
    for model_admin in admin.site._registry.values():
        if model_admin.__module__ == "support_console.admin":
            assert model_admin.show_facets is admin.ShowFacets.NEVER, model_admin


@pytest.mark.parametrize(
    "model, field",
    [
        (Message, "destination_country"),
        (Message, "sender_identity"),
        (Message, "template_key"),
        (InboundMessage, "keyword"),
        (InboundMessage, "our_identity"),
        (Message, "provider"),
    ],
)
def test_distinct_values_are_the_sorted_non_empty_values(model, field):
    seed(40)
    InboundMessage.objects.bulk_create(
        [
            InboundMessage(provider="twilio", provider_message_id="a", keyword="STOP"),
            InboundMessage(provider="twilio", provider_message_id="b", keyword="HELP"),
            InboundMessage(provider="twilio", provider_message_id="c", our_identity="+15017122661"),
        ]
    )
    expected = sorted({v for v in model.objects.values_list(field, flat=True) if v})
    assert expected and distinct_values(model, field) == expected


def test_distinct_values_are_capped(monkeypatch):
    seed(40)
    monkeypatch.setattr(filters, "MAX_CHOICES", 2)
    everything = sorted(set(Message.objects.values_list("destination_country", flat=True)))
    assert distinct_values(Message, "destination_country") == everything[:2]


def test_every_choice_filter_is_backed_by_an_index_that_starts_with_its_field():
    """Without one, PostgreSQL's skip scan would read the table once per value."""
    for model_admin in admin.site._registry.values():
        for entry in model_admin.list_filter:
            if isinstance(entry, type) and issubclass(entry, CachedDistinctFilter):
                model = model_admin.model
                leading = {index.fields[0] for index in model._meta.indexes}
                assert entry.field in leading, (model.__name__, entry.field)


def test_provider_choices_are_the_providers_present_even_unregistered_ones(admin_client):
    """``register_outbound`` takes any provider name; its messages must stay findable."""
    seed(12)
    Message.objects.filter(pk=Message.objects.order_by("pk").first().pk).update(provider="acme")
    body = admin_client.get(reverse("admin:sms_delivery_message_changelist")).content.decode()
    assert "?provider=acme" in body and "?provider=twilio" in body
    assert "?provider=telnyx" not in body  # no Telnyx message: no Telnyx choice


@pytest.mark.postgres
def test_on_postgresql_choices_come_from_a_skip_scan_never_a_distinct(admin_client):
    """The first view after the cache expires: a recursive index probe per value."""
    seed(12)
    cache.clear()
    sql = queries_cold(admin_client, reverse("admin:sms_delivery_message_changelist"))
    assert sum("WITH RECURSIVE" in q for q in sql) == 4  # provider, country, sender, template
    assert not any("DISTINCT" in q.upper() for q in sql)


def queries_cold(client, url):
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [q["sql"] for q in captured.captured_queries]
