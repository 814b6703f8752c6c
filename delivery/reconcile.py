"""Reconciliation: ask the provider about messages whose final report never came.

Twilio retries a callback at most once, and only when it could not connect, so a status lost
to a 503 during an outage is gone unless we ask. For each enabled provider whose adapter can
poll (:attr:`~delivery.adapters.BaseProvider.can_poll`), the messages still not final
``POLL_AFTER_MINUTES`` after they were sent (and younger than ``max_age``) are looked up
through the provider's SDK, oldest first, at most ``POLLS_PER_SECOND`` calls a second. An
answer that says something new goes through :func:`~delivery.ingest.ingest` as a ``poll``
event with its own dedupe key, so the summary rule, dedupe and signals behave as for a
webhook; an answer that repeats what we know changes nothing but the time it was asked
(``Message.last_polled_at``), so an interrupted run resumes where it stopped and a stuck
message is not asked about again before ``repoll_after``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from .adapters import BaseProvider
from .events import NormalizedEvent
from .exceptions import MessageNotFound, PollFailed, RateLimited
from .ingest import ingest
from .lifecycle import PENDING_STATUSES
from .models import Message
from .outgoing import LOCAL_ID_PREFIX

#: A provider answering 429 this many times in a row for one message stops this run.
MAX_RATE_LIMITED = 3
#: This many failures in a row (timeouts, 5xx) stop this run for the provider.
MAX_FAILURES = 5
#: The longest a provider's Retry-After is waited for; beyond, the run stops and resumes later.
MAX_RETRY_AFTER = 60.0
BATCH = 200


@dataclass
class Tally:
    provider: str
    asked: int = 0
    changed: int = 0
    unchanged: int = 0
    not_found: int = 0
    failed: int = 0
    stopped: str = ""  #: why the run for this provider stopped early, "" if it did not
    skipped: str = ""  #: why the provider was not asked at all
    #: ("sent", "delivered") -> how many messages went that way.
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)


class RateLimiter:
    """At most ``per_second`` calls a second, spread evenly."""

    def __init__(self, per_second: float, sleep: Callable[[float], None], clock=time.monotonic):
        self.interval, self.sleep, self.clock = 1.0 / per_second, sleep, clock
        self.next_at = 0.0

    def wait(self) -> None:
        now = self.clock()
        if now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


def due(
    provider: BaseProvider,
    *,
    now: datetime,
    max_age: timedelta,
    repoll_after: timedelta,
    older_than: timedelta | None = None,
):
    """The messages of ``provider`` to ask about, oldest first."""
    poll_after = older_than or timedelta(minutes=provider.options.poll_after_minutes)
    return (
        Message.objects.filter(
            Q(last_polled_at__isnull=True) | Q(last_polled_at__lt=now - repoll_after),
            provider=provider.name,
            current_status__in=PENDING_STATUSES,
            created_at__lt=now - poll_after,
            created_at__gte=now - max_age,
        )
        # An erased person's messages (number blanked, hash kept) are not asked about again:
        # the answer would store new data about them.
        .exclude(recipient_encrypted="", recipient_hash__gt="")
        # A send the provider never answered has no id of its to ask about.
        .exclude(provider_message_id__startswith=LOCAL_ID_PREFIX)
        .order_by("created_at", "pk")
    )


def reconcile(
    provider: BaseProvider,
    messages,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    report: Callable[[Message, str], None] = lambda message, line: None,
    progress: Callable[[int], None] = lambda done: None,
) -> Tally:
    """Ask ``provider`` about ``messages`` (a queryset from :func:`due`)."""
    tally = Tally(provider.name)
    if not provider.can_poll:
        tally.skipped = provider.cannot_poll_because or "its adapter cannot ask the API"
        return tally
    limiter = RateLimiter(provider.options.polls_per_second, sleep)
    failures = 0
    for message in _stream(messages, limit):
        if not dry_run and not _claim(message):
            continue  # another run is asking about it right now
        limiter.wait()
        tally.asked += 1
        try:
            events = _ask(provider, message, limiter, sleep)
        except RateLimited:
            tally.stopped = f"the API kept answering 429 (after {MAX_RATE_LIMITED} tries)"
            tally.asked -= 1
            _release(message, dry_run)
            break
        except MessageNotFound:
            tally.not_found += 1
            report(message, "not found at the provider")
            continue
        except PollFailed as exc:
            tally.failed += 1
            failures += 1
            report(message, f"failed: {exc}")
            _release(message, dry_run)  # asked again by the next run
            if failures >= MAX_FAILURES:
                tally.stopped = f"{failures} failures in a row (last: {exc})"
                break
            continue
        failures = 0
        news = [e for e in events if _is_news(e, message)]
        if not news:
            tally.unchanged += 1
        else:
            tally.changed += 1
            before, after = message.current_status, news[-1].status
            tally.transitions[before, after] += 1
            report(message, f"{before} → {after}" + (" (dry run)" if dry_run else ""))
            if not dry_run:
                ingest(news)
        progress(tally.asked)
    return tally


def _ask(provider, message, limiter, sleep) -> list[NormalizedEvent]:
    """``fetch_status``, waiting and asking again when the provider says 429."""
    for attempt in range(1, MAX_RATE_LIMITED + 1):
        try:
            return list(provider.fetch_status(message.provider_message_id))
        except RateLimited as exc:
            if attempt == MAX_RATE_LIMITED:
                raise
            wait = exc.retry_after if exc.retry_after is not None else 2.0**attempt
            sleep(min(wait, MAX_RETRY_AFTER))
            limiter.wait()
    raise AssertionError("unreachable")  # pragma: no cover


def _is_news(event: NormalizedEvent, message: Message) -> bool:
    return (event.status, event.error_code) != (message.current_status, message.error_code)


def _claim(message: Message) -> bool:
    """Mark ``message`` asked about now, unless another run did since it was read: two runs at
    once (an overlapping cron) never ask about the same message."""
    before = message.last_polled_at
    claimed = Message.objects.filter(pk=message.pk, last_polled_at=before).update(
        last_polled_at=timezone.now()
    )
    return claimed == 1


def _release(message: Message, dry_run: bool) -> None:
    """Undo the claim of a message that got no answer: the next run asks about it."""
    if not dry_run:
        Message.objects.filter(pk=message.pk).update(last_polled_at=message.last_polled_at)


def _stream(messages, limit: int | None) -> Iterator[Message]:
    """``messages`` in batches along their order (created_at, pk); stops after ``limit``."""
    given = 0
    after: tuple[datetime, int] | None = None
    while limit is None or given < limit:
        page = messages
        if after is not None:
            when, pk = after
            page = page.filter(created_at__gte=when).filter(  # the index's starting point
                Q(created_at__gt=when) | Q(created_at=when, pk__gt=pk)
            )
        batch = list(page[: BATCH if limit is None else min(BATCH, limit - given)])
        if not batch:
            return
        yield from batch
        given += len(batch)
        after = (batch[-1].created_at, batch[-1].pk)
