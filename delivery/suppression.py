"""The suppression list: people who must not be texted (they opted out).

Filled by messages people send us (STOP-type keywords; START-type ones lift it), by provider
errors that mean "this person opted out" (``ErrorCategory.OPT_OUT``: Twilio's 21610 and its
equivalents in every provider's error table) and by a lead in the console (audited). Kept as
history: a lifted entry stays, with when and why.

Opt-outs are per sender at most providers (Twilio's by number or Messaging Service), so each
entry names the sender it came through (``scope``; "" for every sender). By default any active
entry suppresses the person for every sender, the safe reading; with
``SMS_DELIVERY["SUPPRESSION_PER_SENDER"] = True`` an entry only stops sends from its own sender.
"""

from __future__ import annotations

from django.db import router
from django.utils import timezone

from .conf import app_settings
from .models import Suppression
from .recipients import recipient_hash, to_e164


def is_suppressed(number: str, *, sender: str | None = None) -> bool:
    """Whether ``number`` (any common format; ``DEFAULT_REGION`` for national ones) must not be
    texted, from ``sender`` when given. An unreadable number is not suppressed (``send_sms``
    refuses it anyway)."""
    e164 = to_e164(number, app_settings.DEFAULT_REGION)
    if not e164:
        return False
    return active_for(recipient_hash(e164), sender).exists()


def active_for(person: str, sender: str | None = None):
    """The active entries of ``person`` (a recipient hash) that stop a send from ``sender``."""
    entries = Suppression.objects.filter(recipient_hash=person, lifted_at=None)
    if sender is not None and app_settings.SUPPRESSION_PER_SENDER:
        entries = entries.filter(scope__in=("", sender))
    return entries


def suppress(
    person: str, *, scope: str, source: str, reason: str, provider: str = "", by: str = ""
) -> None:
    """Add an active entry for ``person`` (a recipient hash) unless one from the same source
    exists for ``scope``.

    Safe inside the ingest transaction and under concurrency: the insert is ``ON CONFLICT DO
    NOTHING`` against the one-active-entry-per-source-and-scope constraint (a lead's entry never
    absorbs a keyword's: lifting one leaves the other).
    """
    if not person:
        return
    entry = Suppression(
        recipient_hash=person,
        scope=scope[:100],
        source=source,
        reason=reason[:200],
        provider=provider,
        created_by=by[:150],
    )
    Suppression.objects.using(router.db_for_write(Suppression)).bulk_create(
        [entry], ignore_conflicts=True
    )


def lift(person: str, *, scope: str, reason: str) -> int:
    """A START-type keyword to ``scope`` (our number): lift ``person``'s entries that came
    through that sender (a keyword's or an error code's; a lead's entries stay, and so do
    other senders' in every mode: opting back in to one sender is not to all); how many."""
    entries = Suppression.objects.filter(recipient_hash=person, lifted_at=None, scope=scope)
    entries = entries.exclude(source=Suppression.Source.CONSOLE)
    return entries.update(lifted_at=timezone.now(), lift_reason=reason[:200])
