"""sms_delivery_simulate posts signed callbacks to a real running server (live_server)."""

import io

import pytest
from django.core.management import CommandError, call_command

from delivery.lifecycle import Status
from delivery.models import InboundMessage, Message, MessageEvent
from providers.management.commands.sms_delivery_simulate import build_callbacks

pytestmark = pytest.mark.django_db(transaction=True)


def test_callbacks_include_duplicates_and_are_shuffled():
    callbacks = build_callbacks(30, seed=5, account_sid="AC" + "0" * 32, done_date="2612011200")
    keys = [(c["MessageSid"], c["MessageStatus"]) for c in callbacks]
    assert len(keys) > len(set(keys))  # duplicates
    again = build_callbacks(30, seed=5, account_sid="AC" + "0" * 32, done_date="2612011200")
    assert callbacks == again  # deterministic
    first_seen = {}
    order = [first_seen.setdefault(sid, i) for i, (sid, _) in enumerate(keys)]
    assert order != sorted(order)  # messages interleaved, not one after another


def test_fills_a_running_server_and_is_idempotent(live_server):
    out = io.StringIO()
    run = dict(url=live_server.url, messages=12, seed=2, done_date="2612011200", stdout=out)
    call_command("sms_delivery_simulate", **run)
    assert "Done:" in out.getvalue() and "× 200" in out.getvalue()
    assert Message.objects.count() == 12
    events = MessageEvent.objects.count()
    assert MessageEvent.objects.filter(duplicate_count__gt=0).exists()
    assert not Message.objects.filter(current_status=Status.ACCEPTED).exists()

    replies = InboundMessage.objects.count()
    assert replies >= 1 and set(InboundMessage.objects.values_list("keyword", flat=True)) == {
        "STOP"
    }

    call_command("sms_delivery_simulate", **run)
    assert (Message.objects.count(), MessageEvent.objects.count()) == (12, events)
    assert InboundMessage.objects.count() == replies


def test_another_done_date_is_another_receipt(live_server):
    """The carrier's done date tells two receipts apart; a later run on its own clock adds them."""
    run = dict(url=live_server.url, messages=12, seed=2, stdout=io.StringIO())
    call_command("sms_delivery_simulate", done_date="2612011200", **run)
    events = MessageEvent.objects.count()
    receipts = MessageEvent.objects.exclude(provider_occurred_at=None).count()
    assert receipts > 0
    call_command("sms_delivery_simulate", done_date="2612011201", **run)
    assert MessageEvent.objects.count() == events + receipts


@pytest.mark.parametrize("done_date", ["tomorrow", "26121120", "2612011260", "2613011200"])
def test_a_malformed_done_date_is_refused(done_date):
    with pytest.raises(CommandError, match="YYMMDDhhmm"):
        call_command("sms_delivery_simulate", done_date=done_date, stdout=io.StringIO())


def test_wrong_token_is_reported(live_server):
    with pytest.raises(CommandError, match="403"):
        call_command(
            "sms_delivery_simulate",
            url=live_server.url,
            messages=2,
            auth_token="wrong",
            stdout=io.StringIO(),
        )


def test_wait_gives_up_on_a_server_that_never_answers():
    """`make demo` starts it with --wait beside runserver; a server that never comes is an error."""
    with pytest.raises(CommandError, match="Cannot reach"):
        call_command(
            "sms_delivery_simulate", url="http://127.0.0.1:9", wait=0.5, stdout=io.StringIO()
        )


def test_wait_returns_as_soon_as_the_server_answers(live_server):
    out = io.StringIO()
    call_command("sms_delivery_simulate", url=live_server.url, messages=2, wait=30, stdout=out)
    assert "Done:" in out.getvalue()
