"""The progress line of commands that go through many rows (seed, replay, reconcile, purge)."""

from __future__ import annotations

import time
from collections.abc import Callable


class Progress:
    """``[#####.....]  40% 400,000/1,000,000 messages · … · 52 s, about 78 s left``.

    ``total`` may be unknown (None): the line then says how many so far and the rate.
    """

    def __init__(self, write: Callable[[str], None], total: int | None, noun: str, every: int = 1):
        """``every``: print one line in this many updates (and at the end)."""
        self.write, self.total, self.noun, self.every = write, total, noun, every
        self.started = time.monotonic()

    def update(self, done: int, detail: str = "") -> None:
        if done % self.every and done != self.total:
            return
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed else 0.0
        tail = f" · {detail}" if detail else ""
        if not self.total:
            self.write(f"  {done:,} {self.noun}{tail} · {elapsed:.0f} s ({rate:,.0f}/s)")
            return
        share = min(done / self.total, 1.0)
        filled = int(share * 30)
        left = (self.total - done) / rate if rate else 0.0
        self.write(
            f"  [{'#' * filled}{'.' * (30 - filled)}] {share:4.0%} {done:,}/{self.total:,} "
            f"{self.noun}{tail} · {elapsed:.0f} s, about {left:.0f} s left"
        )
