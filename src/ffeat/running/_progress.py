"""A dependency-free progress bar on stderr, shown only on a terminal."""
from __future__ import annotations

import sys
import time


class Progress:
    """Counts finished items and redraws one status line at most 10 times a second.

    Parameters
    ----------
    total : int or None
        Number of items expected; ``None`` when it is not known in advance (a
        stream), shown as a count and a rate without a bar.
    label : str
        Text before the bar.
    enabled : bool or None
        Force the bar on or off; ``None`` shows it when stderr is a terminal.
    """

    def __init__(self, total: int | None, label: str = "", enabled: bool | None = None) -> None:
        self.total = total
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.done = 0
        self.failed = 0
        self._start = time.perf_counter()
        self._last = 0.0

    def update(self, ok: bool = True) -> None:
        """Record one finished item."""
        self.add(1, 0 if ok else 1)

    def add(self, done: int, failed: int = 0) -> None:
        """Record ``done`` finished items, ``failed`` of them unreadable."""
        self.done += done
        self.failed += failed
        now = time.perf_counter()
        if self.enabled and (now - self._last > 0.1 or self.done == self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self._start, 1e-9)
        if self.total is None:
            sys.stderr.write(f"\r{self.label} {self.done:,} done, {self.failed:,} failed, "
                             f"{rate:,.0f} img/s ")
            sys.stderr.flush()
            return
        frac = self.done / self.total if self.total else 1.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {self.done}/{self.total} "
                         f"{rate:,.0f} img/s, {self.failed} failed, ETA {eta:.0f}s ")
        sys.stderr.flush()

    def close(self) -> None:
        """End the status line."""
        if self.enabled:
            self._draw(time.perf_counter())
            sys.stderr.write("\n")
            sys.stderr.flush()


def status(message: str, enabled: bool | None = None) -> None:
    """One ``ffeat: message`` line on stderr for a long step (``None``: on a terminal)."""
    if sys.stderr.isatty() if enabled is None else enabled:
        print(f"ffeat: {message}", file=sys.stderr, flush=True)
