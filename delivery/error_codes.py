"""Provider error codes explained for support: a category, a plain-language note, a next step.

Each provider module keeps its catalogue as data (a dict of :class:`ErrorInfo`); categories are
the shared :class:`delivery.lifecycle.ErrorCategory`, so the console can filter across providers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .lifecycle import ErrorCategory


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What one provider error code means, for a support agent."""

    code: str
    title: str  #: the provider's own short title
    category: ErrorCategory
    note: str  #: what happened, in plain language
    next_step: str  #: what support should do or tell the customer


class ErrorCatalogue:
    """A provider's error codes, with a fallback for codes it does not list."""

    def __init__(self, provider: str, entries: dict[str, ErrorInfo], docs_url: str = ""):
        self.provider = provider
        self.entries = entries
        self.docs_url = docs_url  #: where the provider documents a code; "{code}" is filled in

    def __contains__(self, code: str) -> bool:
        return code in self.entries

    def lookup(self, code: str) -> ErrorInfo | None:
        """The entry for ``code``; an ``unknown`` entry for codes not listed; None for no code."""
        if not code:
            return None
        return self.entries.get(code) or ErrorInfo(
            code=code,
            title="Unlisted error code",
            category=ErrorCategory.UNKNOWN,
            note=f"{self.provider} reported error {code}, which this library does not describe yet.",
            next_step="Escalate to the provider with the provider message id; look the code up "
            + (f"at {self.docs_url.format(code=code)}." if self.docs_url else "in its docs."),
        )

    def category(self, code: str) -> str:
        info = self.lookup(code)
        return info.category if info else ""
