"""The normalized event: one provider report in the one shape every provider is mapped to.

Pure data (no database), so provider adapters can build it without importing models.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from .lifecycle import Status

_MAX_KEY = 255


class EventSource(models.TextChoices):
    """How a report reached us."""

    WEBHOOK = "webhook", _("Webhook")
    POLL = "poll", _("Poll (reconciliation)")
    REPLAY = "replay", _("Replay")
    SEND = "send", _("Send API (its answer to send_sms)")


@dataclass(frozen=True, slots=True)
class NormalizedEvent:
    """One provider report, in the shape every provider is mapped to (seed 002)."""

    provider: str
    provider_message_id: str
    raw_status: str  #: the provider's own status word, verbatim
    status: Status  #: canonical lifecycle state
    provider_occurred_at: datetime | None = None  #: aware; None when the provider sends none
    provider_event_id: str = ""  #: the provider's event id, when it has one
    error_code: str = ""
    error_category: str = ""  #: an ErrorCategory value, "" when there is no error
    error_detail: str = ""  #: the provider's error text, if any
    recipient: str = ""  #: number in any format; stored hashed and encrypted
    sender_identity: str = ""
    destination_country: str = ""  #: ISO alpha-2, when the provider says so
    segments: int | None = None
    raw_payload: dict[str, Any] = field(default_factory=dict)
    dedupe_parts: tuple[str, ...] = ()  #: extra provider fields that tell two reports apart
    #: How it reached us; a poll or a replay has keys of its own, never a webhook's.
    source: str = EventSource.WEBHOOK

    @property
    def dedupe_key(self) -> str:
        """Identity of this report: the provider's event id, or a key derived from its content.

        Redeliveries of one report share the key; distinct reports do not. Keys longer than the
        column are replaced by their SHA-256.
        """
        if self.provider_event_id:
            key = f"{self.provider}:event:{self.provider_event_id}"
            if self.source != EventSource.WEBHOOK:  # a replay names its reading in the parts
                key = ":".join([key, *self.dedupe_parts])
        else:
            occurred = self.provider_occurred_at.isoformat() if self.provider_occurred_at else ""
            key = ":".join(
                [
                    self.provider,
                    self.provider_message_id,
                    self.raw_status,
                    self.error_code,
                    occurred,
                    *self.dedupe_parts,
                ]
            )
        if self.source != EventSource.WEBHOOK:
            key = f"{key}:{self.source}"
        if len(key) > _MAX_KEY:
            key = f"{self.provider}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
        return key


class ConsentChange(models.TextChoices):
    """What an inbound keyword does to the sender's consent to receive our messages."""

    OPT_OUT = "opt_out", _("Opted out")
    OPT_IN = "opt_in", _("Opted back in")
    HELP = "help", _("Asked for help")


#: Carrier-standard keywords (CTIA; the defaults of Twilio and Telnyx). A message counts only when
#: it is the keyword alone (any case, spaces and a final "." or "!" ignored): "Stop texting me" is
#: not an opt-out. https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out
OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})


def keyword_of(text: str) -> tuple[str, str]:
    """``(keyword, consent change)`` of an inbound text, or ``("", "")`` for ordinary text.

    Records keep the keyword, not the text.
    """
    word = " ".join(text.split()).rstrip(".!").upper()
    for keywords, change in [
        (OPT_OUT_KEYWORDS, ConsentChange.OPT_OUT),
        (OPT_IN_KEYWORDS, ConsentChange.OPT_IN),
        (HELP_KEYWORDS, ConsentChange.HELP),
    ]:
        if word in keywords:
            return word, change
    return "", ""


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """One message a person sent to one of our numbers, reduced to what consent needs."""

    provider: str
    provider_message_id: str
    sender: str  #: the person's number, any format; stored hashed and encrypted
    our_identity: str  #: our number, short code or channel address that received it
    keyword: str = ""  #: STOP, START, HELP…; "" for ordinary text
    consent: str = ""  #: a ConsentChange value, or ""
    raw_payload: dict[str, Any] = field(default_factory=dict)


#: What an adapter's parse returns and ingest takes: delivery reports and messages people sent
#: us (some providers report both on one URL).
Event = NormalizedEvent | InboundEvent
