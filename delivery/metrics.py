"""Counters for alerting on the webhook path, without writing to the delivery tables.

Rejected and failed webhooks are counted in Django's cache (per provider, per hour) and
announced through the ``webhook_rejected`` signal, so a project can forward them to its own
monitoring (Prometheus, StatsD, Sentry…). ``sms_delivery_health`` reads the counters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.core.cache import cache
from django.dispatch import Signal
from django.utils import timezone

from .masking import get_logger

logger = get_logger("delivery.webhooks")

#: Sent when a webhook is refused or fails. kwargs: provider (str), reason (str: one of
#: "signature_invalid", "malformed_payload", "payload_too_large", "storage_unavailable", "misconfigured"),
#: detail (str, never contains the body or phone numbers)
webhook_rejected = Signal()

_TTL = 7 * 24 * 3600


def counter_key(reason: str, provider: str, hour: str | None = None) -> str:
    hour = hour or timezone.now().strftime("%Y%m%d%H")
    return f"sms_delivery:{reason}:{provider}:{hour}"


def count_rejection(provider: str, reason: str, detail: str = "") -> None:
    try:
        _add(counter_key(reason, provider), 1)
    except Exception:  # noqa: BLE001 - a broken cache must not turn a 403 into a 500
        logger.exception("could not count %s for %s", reason, provider)
    # send_robust: a failing receiver must not turn a 403 or a 400 into a 500.
    webhook_rejected.send_robust(sender=None, provider=provider, reason=reason, detail=detail)


def _add(key: str, n: int) -> None:
    """Add ``n`` to the counter ``key``: one cache call, two in the hour's first (``incr``
    refuses a key that does not exist; ``add`` creates it with its lifetime, unless another
    process just did)."""
    try:
        cache.incr(key, n)
    except ValueError:
        if not cache.add(key, n, _TTL):
            cache.incr(key, n)


def rejections(reason: str, provider: str, hour: str | None = None) -> int:
    return cache.get(counter_key(reason, provider, hour), 0)


_paused = threading.local()


@contextmanager
def paused() -> Iterator[None]:
    """Count nothing in this thread meanwhile: for reports that are history, not traffic
    (``sms_delivery_seed`` backdates what it ingests; counting it now would page someone)."""
    _paused.on = True
    try:
        yield
    finally:
        _paused.on = False


def count(reason: str, provider: str, n: int = 1) -> None:
    """Add ``n`` to this hour's counter of ``reason`` for ``provider`` (e.g. "duplicate")."""
    if getattr(_paused, "on", False):
        return
    try:
        _add(counter_key(reason, provider), n)
    except Exception:  # noqa: BLE001 - counting must never fail what it counts
        logger.exception("could not count %s for %s", reason, provider)


def counted(reason: str, provider: str, now=None) -> int:
    """``reason``'s count for ``provider`` in this clock hour and the one before."""
    now = now or timezone.now()
    hours = [now.strftime("%Y%m%d%H"), (now - timedelta(hours=1)).strftime("%Y%m%d%H")]
    try:
        return sum(cache.get_many([counter_key(reason, provider, h) for h in hours]).values())
    except Exception:  # noqa: BLE001 - a broken cache reads as no count, never a crash
        return 0
