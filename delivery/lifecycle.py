"""The canonical delivery lifecycle and the precedence rule that decides a message's summary.

Pure Python: no database, no settings. Everything that decides "what is the status of this
message now?" lives here so it can be tested as a property.

The rule: every event gets a *precedence key*; the summary is the event with the greatest key.
A maximum over a set does not depend on arrival order or on duplicates, so the summary is a
deterministic function of the set of events received, and applying events one by one
(``max(current, new)``) gives the same answer as deciding over the whole set.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    """Canonical delivery states (seed 000), plus the documented ``read`` extension."""

    #: The provider accepted the send request or queued the message.
    ACCEPTED = "accepted", _("Accepted")
    #: Handed to the downstream network or messaging channel.
    SENT = "sent", _("Sent")
    #: A carrier or handset delivery receipt reported success.
    DELIVERED = "delivered", _("Delivered")
    #: Extension for WhatsApp / RCS: the recipient opened the message (read receipts on).
    READ = "read", _("Read")
    #: A delivery receipt said the handset or destination was not reached.
    UNDELIVERED = "undelivered", _("Undelivered")
    #: The provider could not send, route or process the message.
    FAILED = "failed", _("Failed")
    #: The carrier's retry window ended before delivery.
    EXPIRED = "expired", _("Expired")
    #: The carrier, provider or a policy rejected the message.
    REJECTED = "rejected", _("Rejected")
    #: The provider reported something this library cannot map; kept for review.
    UNKNOWN = "unknown", _("Unknown")


#: States after which no further progress is expected. ``delivered`` may still be followed by
#: ``read`` on channels with read receipts; that is a higher-ranked final state, not a downgrade.
FINAL_STATUSES = frozenset(
    {
        Status.DELIVERED,
        Status.READ,
        Status.UNDELIVERED,
        Status.FAILED,
        Status.EXPIRED,
        Status.REJECTED,
    }
)
#: The others, listed rather than "not final" so that a query can use the status index.
PENDING_STATUSES = frozenset(set(Status) - FINAL_STATUSES)
FAILURE_STATUSES = frozenset({Status.UNDELIVERED, Status.FAILED, Status.EXPIRED, Status.REJECTED})

#: Precedence, lowest first. Every final state outranks every intermediate one, so a late
#: ``sent`` can never pull a message back from ``failed``. Among final states the one that proves
#: the message got furthest wins: a delivery receipt is positive evidence that outweighs a
#: failure report for the same message, and a carrier's "not delivered" says more than a
#: provider's "could not send". ``unknown`` ranks lowest: an unmapped report never overrides a
#: known state, it only flags the message for review.
PRECEDENCE: tuple[Status, ...] = (
    Status.UNKNOWN,
    Status.ACCEPTED,
    Status.SENT,
    Status.FAILED,
    Status.REJECTED,
    Status.EXPIRED,
    Status.UNDELIVERED,
    Status.DELIVERED,
    Status.READ,
)
RANK = {status: rank for rank, status in enumerate(PRECEDENCE)}


class ErrorCategory(models.TextChoices):
    """Why a message failed, in terms support can act on; shared by every provider."""

    INVALID_NUMBER = "invalid_number", _("Invalid number")
    UNREACHABLE_HANDSET = "unreachable_handset", _("Unreachable handset")
    CARRIER_FILTERING = "carrier_filtering", _("Carrier filtering")
    OPT_OUT = "opt_out", _("Recipient opted out")
    SENDER_NOT_REGISTERED = "sender_not_registered", _("Sender not registered")
    ACCOUNT_BILLING = "account_billing", _("Account or billing")
    PROVIDER_OUTAGE = "provider_outage", _("Provider or network problem")
    CHANNEL_POLICY = "channel_policy", _("Channel policy (e.g. WhatsApp window)")
    UNKNOWN = "unknown", _("Unknown")


_NO_TIME = datetime.min.replace(tzinfo=UTC)


class PrecedenceKey(NamedTuple):
    """Total order over events: status rank, then provider time, error code and dedupe key.

    The tie-breakers only choose *which* of several events with the same status decides the
    summary (and so which error code is shown); they make the choice independent of arrival
    order. Our own receive time is deliberately absent: it depends on arrival order.
    """

    rank: int
    occurred_at: datetime
    error_code: str
    dedupe_key: str


def is_final(status: str) -> bool:
    """Whether ``status`` is a final state."""
    return status in FINAL_STATUSES


def precedence_key(
    status: str, occurred_at: datetime | None, error_code: str, dedupe_key: str
) -> PrecedenceKey:
    """The key by which the summary-deciding event is chosen (greatest wins)."""
    return PrecedenceKey(RANK[Status(status)], occurred_at or _NO_TIME, error_code, dedupe_key)


def decide(keys):
    """The deciding key of a collection of precedence keys, or ``None`` when it is empty."""
    return max(keys, default=None)


def supersedes(new: PrecedenceKey, current: PrecedenceKey | None) -> bool:
    """Whether an event with key ``new`` takes over the summary from ``current``."""
    return current is None or new > current
