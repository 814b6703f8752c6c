"""Replay: stored raw requests read again with the current adapters, after a mapping fix."""

import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import reverse

from delivery.events import EventSource
from delivery.exceptions import MalformedPayload
from delivery.lifecycle import Status
from delivery.models import Message, MessageEvent, RawWebhook
from delivery.replay import State, replay
from delivery.signals import message_status_changed
from providers.twilio import TwilioProvider
from support_console.groups import AGENT, LEAD
from support_console.models import RevealLog
from tests.fixtures import twilio
from tests.providers.test_twilio import post

pytestmark = pytest.mark.django_db

UNMAPPED = twilio.callback("partially_delivered", sid="SM" + "1" * 32)


@pytest.fixture
def transitions():
    seen = []

    def receiver(message, previous_status, status, **kwargs):
        seen.append((message.provider_message_id, previous_status, status))

    message_status_changed.connect(receiver)
    yield seen
    message_status_changed.disconnect(receiver)


@pytest.fixture
def unmapped(client):
    """A report with a status word the Twilio mapping does not know: in the review queue."""
    assert post(client, UNMAPPED).status_code == 200
    message = Message.objects.get()
    assert (message.current_status, message.needs_review) == (Status.UNKNOWN, True)
    return message


@pytest.fixture
def mapping_fixed(monkeypatch):
    """The fix a new release would bring: "partially_delivered" read as delivered."""
    fixed = {**TwilioProvider.statuses, "partially_delivered": Status.DELIVERED}
    monkeypatch.setattr(TwilioProvider, "statuses", fixed)


def snapshot():
    return (
        list(MessageEvent.objects.values_list("dedupe_key", "status", "duplicate_count")),
        list(Message.objects.values_list("current_status", "needs_review")),
        list(RawWebhook.objects.values_list("parse_error", flat=True)),
    )


def run(*args):
    out = io.StringIO()
    call_command("sms_delivery_replay", *args, stdout=out)
    return out.getvalue()


def test_without_a_fix_replay_changes_nothing(unmapped):
    before = snapshot()
    assert "1 unchanged" in run()
    assert snapshot() == before


def test_a_mapping_fix_takes_the_message_out_of_review(
    unmapped, mapping_fixed, transitions, django_capture_on_commit_callbacks
):
    before = snapshot()
    output = run("--review", "--dry-run")
    assert "read as unknown before, as delivered now" in output and unmapped.public_id in output
    assert "1 changed" in output and snapshot() == before and transitions == []

    with django_capture_on_commit_callbacks(execute=True):
        run("--review")
    message = Message.objects.get()
    assert (message.current_status, message.needs_review) == (Status.DELIVERED, False)
    original, replayed = MessageEvent.objects.order_by("pk")
    assert (original.status, original.source) == (Status.UNKNOWN, EventSource.WEBHOOK)
    assert (replayed.status, replayed.source) == (Status.DELIVERED, EventSource.REPLAY)
    assert replayed.raw_webhook == original.raw_webhook and original.duplicate_count == 0
    assert transitions == [(UNMAPPED["MessageSid"], Status.ACCEPTED, Status.DELIVERED)]

    after = snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        assert "1 unchanged" in run()
    assert snapshot() == after  # replaying twice changes nothing
    assert len(transitions) == 1


def test_an_unreadable_request_is_read_after_a_fix_and_leaves_the_queue(client, monkeypatch):
    def broken(self, request):
        raise MalformedPayload("MessageStatus is missing.")  # the bug of an older release

    with monkeypatch.context() as patch:
        patch.setattr(TwilioProvider, "parse", broken)
        assert post(client, twilio.DELIVERED).status_code == 400
    raw = RawWebhook.objects.get()
    assert raw.parse_error and not Message.objects.exists()
    assert replay(raw, dry_run=True).state == State.READ and not Message.objects.exists()

    outcome = replay(raw)
    raw.refresh_from_db()
    assert outcome.state == State.READ and raw.parse_error == ""
    assert MessageEvent.objects.get().raw_webhook == raw
    assert Message.objects.get().current_status == Status.DELIVERED
    assert raw.recipient_hash == Message.objects.get().recipient_hash != ""
    assert replay(raw).state == State.UNCHANGED


def test_a_request_still_unreadable_stays_in_the_queue(client, monkeypatch):
    def broken(self, request):
        raise MalformedPayload("MessageStatus is missing.")

    monkeypatch.setattr(TwilioProvider, "parse", broken)
    post(client, twilio.DELIVERED)
    outcome = replay(RawWebhook.objects.get())
    assert outcome.state == State.UNREADABLE and "missing" in outcome.reason
    assert RawWebhook.objects.get().parse_error


def test_a_request_never_verified_is_refused(unmapped, mapping_fixed):
    RawWebhook.objects.update(signature_valid=None)  # accepted with verification skipped
    outcome = replay(RawWebhook.objects.get())
    assert outcome.state == State.REFUSED and "never checked" in outcome.reason
    assert Message.objects.get().current_status == Status.UNKNOWN


def test_a_request_that_cannot_be_opened_is_refused(unmapped, mapping_fixed):
    RawWebhook.objects.update(request_encrypted="")  # purged
    assert replay(RawWebhook.objects.get()).state == State.REFUSED


def test_filters_select_the_requests(unmapped, client, mapping_fixed):
    post(client, twilio.callback("sent", sid="SM" + "2" * 32))
    assert "replaying 1 stored request" in run("--review", "--dry-run")
    assert "replaying 2 stored request" in run("--provider", "twilio", "--dry-run")
    assert "replaying 0 stored request" in run("--provider", "plivo", "--dry-run")
    assert "replaying 1 stored request" in run("--message", unmapped.public_id, "--dry-run")
    first = RawWebhook.objects.order_by("pk").first().pk
    assert "replaying 1 stored request" in run("--ids", str(first), "--dry-run")
    assert "replaying 0 stored request" in run("--since", "2999-01-01", "--dry-run")
    assert "replaying 2 stored request" in run("--until", "2999-01-01T00:00:00Z", "--dry-run")


# -- the console: a lead reprocesses the review queue, audited --------------------------------


def console_user(group, name):
    user = User.objects.create_user(name, password="pw-12345678", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_a_lead_reprocesses_review_entries_with_a_reason(unmapped, mapping_fixed, client):
    client.force_login(console_user(LEAD, "lead"))
    url = reverse("admin:sms_delivery_rawwebhook_changelist")
    raw = RawWebhook.objects.get()
    form = {"action": "replay_selected", "_selected_action": [raw.pk]}
    page = client.post(url, form)
    body = page.content.decode()
    assert page.status_code == 200 and "read as unknown before, as delivered now" in body
    assert Message.objects.get().current_status == Status.UNKNOWN  # shown, not done

    page = client.post(url, {**form, "confirm": "yes", "reason": "x"})
    assert "Give a reason" in page.content.decode()
    assert Message.objects.get().current_status == Status.UNKNOWN

    client.post(url, {**form, "confirm": "yes", "reason": "mapping fix, ticket 77"})
    assert Message.objects.get().current_status == Status.DELIVERED
    record = RevealLog.objects.get()
    assert (record.kind, record.raw_webhook, record.username) == ("replay", raw, "lead")
    assert record.reason == "mapping fix, ticket 77"


def test_an_agent_cannot_reprocess(unmapped, mapping_fixed, client):
    client.force_login(console_user(AGENT, "agent"))
    url = reverse("admin:sms_delivery_rawwebhook_changelist")
    raw = RawWebhook.objects.get()
    form = {"action": "replay_selected", "_selected_action": [raw.pk], "confirm": "yes"}
    client.post(url, {**form, "reason": "I want to"})
    assert Message.objects.get().current_status == Status.UNKNOWN
    assert not RevealLog.objects.exists()


@pytest.mark.telnyx
def test_reports_with_event_ids_are_replayed_once_per_reading(client, sms_delivery_settings):
    """Telnyx names each report by an event id (a group message: one per recipient); a replay
    keeps the id and names the new reading, so it is stored once, next to the original."""
    from providers.telnyx import TelnyxProvider
    from tests.fixtures import telnyx
    from tests.providers import test_telnyx

    sms_delivery_settings["PROVIDERS"]["telnyx"] = {
        "PUBLIC_KEYS": [test_telnyx.public_key(test_telnyx.CURRENT)]
    }
    unknown_word = {**TelnyxProvider.statuses}
    del unknown_word["delivery_failed"]  # an older release's mapping
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TelnyxProvider, "statuses", unknown_word)
        assert test_telnyx.post(client, telnyx.GROUP_FINALIZED).status_code == 200
    failed = Message.objects.get(current_status=Status.UNKNOWN)
    assert Message.objects.count() == 3

    assert "1 changed" in run("--provider", "telnyx")
    failed.refresh_from_db()
    assert (failed.current_status, failed.needs_review) == (Status.UNDELIVERED, False)
    original, replayed = failed.events.order_by("pk")
    assert replayed.source == EventSource.REPLAY
    assert replayed.dedupe_key.startswith(original.dedupe_key.removesuffix(":"))
    assert replayed.dedupe_key != original.dedupe_key
    before = snapshot()
    assert "1 unchanged" in run("--provider", "telnyx")
    assert snapshot() == before and MessageEvent.objects.count() == 4

    # A later fix reads it differently again: one more event, not a clash with the first replay.
    another_reading = {**TelnyxProvider.statuses, "delivery_failed": Status.FAILED}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TelnyxProvider, "statuses", another_reading)
        assert "1 changed" in run("--provider", "telnyx")
    assert failed.events.filter(source=EventSource.REPLAY).count() == 2
