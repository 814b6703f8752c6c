"""The suppression list in the console: visible and searchable without numbers; leads add and
lift entries, audited; a message page says when its recipient is suppressed and what consent
was recorded."""

import pytest
from django.urls import reverse

from delivery.ingest import ingest
from delivery.models import Message, Suppression
from delivery.recipients import recipient_hash
from delivery.suppression import is_suppressed, suppress
from support_console.groups import AGENT, LEAD
from support_console.models import RevealLog
from tests.factories import NormalizedEventFactory as Event
from tests.test_support_console import user_in

pytestmark = pytest.mark.django_db

NUMBER = "+14155550199"
LIST = reverse("admin:sms_delivery_suppression_changelist")
ADD = reverse("admin:sms_delivery_suppression_add")


@pytest.fixture
def entry():
    suppress(recipient_hash(NUMBER), scope="+15017122661", source="keyword", reason="STOP")
    return Suppression.objects.get()


def digits_absent(html: str) -> bool:
    return all(form not in html for form in (NUMBER, NUMBER[1:], "555-0199", "5550199"))


def test_an_agent_sees_the_list_without_numbers_and_finds_a_number(client, entry):
    client.force_login(user_in(AGENT, "agent"))
    html = client.get(LIST).content.decode()
    assert "Opt-out keyword" in html and "STOP" in html and digits_absent(html)
    found = client.post(
        reverse("admin:sms_delivery_suppression_search"), {"q": "(415) 555-0199"}, follow=True
    )
    url, _ = found.redirect_chain[-1]
    assert "5550199" not in url and "Opt-out keyword" in found.content.decode()
    other = client.post(
        reverse("admin:sms_delivery_suppression_search"), {"q": "+14155550100"}, follow=True
    )
    assert 'id="result_list"' not in other.content.decode()  # nothing found
    assert client.get(ADD).status_code == 403  # agents do not add


def test_a_lead_adds_a_number_it_is_hashed_and_audited(client):
    client.force_login(user_in(LEAD, "lead"))
    response = client.post(
        ADD, {"number": "+1 415 555 0199", "scope": "", "reason": "customer asked, ticket 88"}
    )
    assert response.status_code == 302
    entry = Suppression.objects.get()
    assert entry.source == Suppression.Source.CONSOLE and entry.created_by == "lead"
    assert entry.recipient_hash == recipient_hash(NUMBER) and is_suppressed(NUMBER)
    audit = RevealLog.objects.get()
    assert audit.kind == RevealLog.Kind.SUPPRESS and audit.username == "lead"
    assert digits_absent(client.get(LIST).content.decode())
    page = client.get(reverse("admin:sms_delivery_suppression_change", args=[entry.pk]))
    assert digits_absent(page.content.decode())


def test_a_number_in_the_reason_is_masked_and_a_wrong_number_is_not_echoed(client):
    client.force_login(user_in(LEAD, "lead"))
    bad = client.post(ADD, {"number": "4155550199x", "scope": "", "reason": "x"})
    assert bad.status_code == 200 and "not a phone number" in bad.content.decode()
    assert "4155550199x" not in bad.content.decode() and not Suppression.objects.exists()
    client.post(ADD, {"number": NUMBER, "scope": "", "reason": f"asked from {NUMBER}"})
    assert NUMBER not in Suppression.objects.get().reason


def test_the_same_number_twice_is_refused(client, entry):
    client.force_login(user_in(LEAD, "lead"))
    again = client.post(ADD, {"number": NUMBER, "scope": "+15017122661", "reason": "again"})
    assert "already suppressed" in again.content.decode()
    assert Suppression.objects.count() == 1


def test_a_lead_lifts_an_entry_audited_and_it_stays_as_history(client, entry):
    client.force_login(user_in(LEAD, "lead"))
    response = client.post(LIST, {"action": "lift", "_selected_action": [entry.pk]}, follow=True)
    assert "1 suppression(s) lifted" in response.content.decode()
    entry.refresh_from_db()
    assert entry.lifted_at and entry.lifted_by == "lead" and not is_suppressed(NUMBER)
    assert RevealLog.objects.get().kind == RevealLog.Kind.LIFT
    assert client.get(LIST, {"active": "no"}).content.decode().count("Opt-out keyword") >= 1


def test_nobody_deletes_an_entry(client, entry):
    client.force_login(user_in(LEAD, "lead"))
    url = reverse("admin:sms_delivery_suppression_delete", args=[entry.pk])
    assert client.get(url).status_code == 403


def test_the_message_page_shows_the_suppression_and_the_consent(client, entry):
    ingest([Event(provider_message_id="SMcon", recipient=NUMBER)])
    message = Message.objects.get()
    Message.objects.filter(pk=message.pk).update(consent_source="checkout form")
    client.force_login(user_in(AGENT, "agent"))
    html = client.get(reverse("admin:sms_delivery_message_change", args=[message.pk])).content
    html = html.decode()
    assert 'id="sms-suppressed"' in html and "Opt-out keyword (STOP)" in html
    assert "checkout form" in html and digits_absent(html)
    listed = client.get(LIST, {"person": message.recipient_hash}).content.decode()
    assert "Opt-out keyword" in listed
