"""The precedence rule: the summary is a function of the SET of events, and finals stick."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.lifecycle import (
    FINAL_STATUSES,
    PRECEDENCE,
    Status,
    decide,
    is_final,
    precedence_key,
    supersedes,
)

T0 = datetime(2026, 11, 22, 14, 37, tzinfo=UTC)

events = st.builds(
    precedence_key,
    status=st.sampled_from(list(Status)),
    occurred_at=st.one_of(st.none(), st.integers(0, 5).map(lambda m: T0 + timedelta(minutes=m))),
    error_code=st.sampled_from(["", "30003", "30007"]),
    dedupe_key=st.text("abc", min_size=1, max_size=3),
)


def fold(keys):
    """Apply keys one at a time, as the ingest service does."""
    current = None
    for key in keys:
        if supersedes(key, current):
            current = key
    return current


@settings(max_examples=300)
@given(st.lists(events, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_summary_ignores_order_and_duplicates(keys, rnd):
    expected = decide(set(keys))
    shuffled = keys + rnd.sample(keys, k=rnd.randint(0, len(keys)))  # duplicates
    rnd.shuffle(shuffled)
    assert fold(shuffled) == expected
    assert fold(reversed(shuffled)) == expected


@settings(max_examples=300)
@given(st.lists(events, min_size=1, max_size=12), events)
def test_a_final_state_is_never_downgraded(keys, late):
    before = fold(keys)
    after = fold([*keys, late])
    if PRECEDENCE[before.rank] in FINAL_STATUSES:
        assert PRECEDENCE[after.rank] in FINAL_STATUSES
    assert after >= before


def key(status, minutes=None, error="", dedupe=None):
    when = None if minutes is None else T0 + timedelta(minutes=minutes)
    return precedence_key(status, when, error, dedupe or f"{status}:{error}:{minutes}")


def status_of(keys):
    return PRECEDENCE[fold(keys).rank]


def test_late_sent_after_failed_keeps_failed():
    assert status_of([key(Status.FAILED, 2, "30001"), key(Status.SENT, 1)]) == Status.FAILED


def test_duplicate_delivered_is_one_delivered():
    delivered = key(Status.DELIVERED, 3)
    assert fold([key(Status.SENT, 1), delivered, delivered]) == delivered


def test_failed_after_delivered_keeps_delivered():
    # A delivery receipt is positive evidence; a later failure report does not undo it.
    assert status_of([key(Status.DELIVERED, 3), key(Status.FAILED, 4, "30008")]) == Status.DELIVERED


def test_read_follows_delivered():
    assert status_of([key(Status.READ, 5), key(Status.DELIVERED, 3)]) == Status.READ


def test_unknown_never_overrides_a_known_state():
    assert status_of([key(Status.SENT, 1), key(Status.UNKNOWN, 9)]) == Status.SENT
    assert status_of([key(Status.UNKNOWN, 9)]) == Status.UNKNOWN


def test_same_status_tie_is_decided_by_content_not_arrival():
    first, second = key(Status.UNDELIVERED, 2, "30003"), key(Status.UNDELIVERED, 2, "30005")
    assert fold([first, second]) == fold([second, first]) == second


def test_every_final_outranks_every_intermediate():
    intermediate = [s for s in PRECEDENCE if not is_final(s)]
    finals = [s for s in PRECEDENCE if is_final(s)]
    assert max(PRECEDENCE.index(s) for s in intermediate) < min(PRECEDENCE.index(s) for s in finals)
    assert set(PRECEDENCE) == set(Status)
