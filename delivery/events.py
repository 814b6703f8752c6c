"""The normalized event: one provider report in the one shape every provider is mapped to.

Pure data (no database), so provider adapters can build it without importing models.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .lifecycle import Status

_MAX_KEY = 255


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

    @property
    def dedupe_key(self) -> str:
        """Identity of this report: the provider's event id, or a key derived from its content.

        Redeliveries of one report share the key; distinct reports do not. Keys longer than the
        column are replaced by their SHA-256.
        """
        if self.provider_event_id:
            key = f"{self.provider}:event:{self.provider_event_id}"
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
        if len(key) > _MAX_KEY:
            key = f"{self.provider}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
        return key
