"""A dependency-free progress bar for long commands, drawn on stderr (only when asked or a TTY)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``update(done)`` redraws at most ~10 times a second; ``close()`` ends the line."""

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.start = time.monotonic()
        self._last = 0.0
        self._done = 0

    def update(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = max(total, 1)
        self._done = done
        now = time.monotonic()
        if self.enabled and (now - self._last >= 0.1 or done >= self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        frac = min(self._done / self.total, 1.0)
        width = 30
        filled = int(frac * width)
        rate = self._done / max(now - self.start, 1e-9) / 1e6
        self.stream.write(
            f"\r{self.label} {frac * 100:5.1f}% [{'#' * filled}{'.' * (width - filled)}] "
            f"{self._done / 2**20:.1f}/{self.total / 2**20:.1f} MiB {rate:.0f} MB/s"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
