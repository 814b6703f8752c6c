"""What ``send_sms`` hands a provider adapter and what it gets back: pure data, no database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Prefix of the id a message has until the provider's API answers with its own.
LOCAL_ID_PREFIX = "local:"


@dataclass(frozen=True)
class Consent:
    """Where and when the recipient agreed to receive the message (seed 001)."""

    source: str  #: e.g. "checkout form, marketing box ticked"
    at: datetime | None = None  #: now when not given


@dataclass(frozen=True)
class Outgoing:
    """What an adapter's ``send`` is asked to send."""

    to: str  #: E.164
    body: str
    sender: str  #: a number, short code, alphanumeric id or messaging service; "" for default
    status_callback: str  #: the absolute URL of this app's status webhook for the provider
    options: dict[str, Any] = field(default_factory=dict)  #: passed to the SDK as they are


@dataclass(frozen=True)
class Sent:
    """The provider's answer to a send it accepted."""

    provider_message_id: str
    raw_status: str  #: e.g. Twilio's "queued" or "accepted"
    sender_identity: str = ""
    segments: int | None = None
