"""A rollout progress bar that behaves both in a terminal and in a log.

On a terminal (the stream is a TTY) it is one line redrawn in place with ``\\r``, at most
``redraw_s`` apart. Anywhere else (a file, a pipe, CI logs) it never writes ``\\r``: it prints a
plain line when ``every_s`` seconds have passed or another ``every_pct`` percent is done since
the last line, and always a last line at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

BAR_WIDTH = 30


def is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or not a real stream
        return False


class Progress:
    """Progress of ``total`` episodes on ``stream`` (stderr by default).

    ``interactive``: redraw in place (default: whether ``stream`` is a TTY). ``clock`` gives
    the time in seconds (``time.monotonic``; tests pass their own).
    """

    def __init__(
        self,
        total: int,
        *,
        stream: IO[str] | None = None,
        enabled: bool = True,
        interactive: bool | None = None,
        every_s: float = 10.0,
        every_pct: float = 10.0,
        redraw_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interactive = is_terminal(self.stream) if interactive is None else interactive
        self.every_s = every_s
        self.every_pct = every_pct
        self.redraw_s = redraw_s
        self._clock = clock
        self._t0 = clock()
        self._last = self._t0 if not self.interactive else float("-inf")
        self._last_pct = 0.0

    def advance(self, *, failed: bool = False) -> None:
        self.done += 1
        self.failed += int(failed)
        now = self._clock()
        finished = self.done >= self.total
        if self.interactive:
            due = now - self._last >= self.redraw_s
        else:
            pct = self._percent()
            due = now - self._last >= self.every_s or pct - self._last_pct >= self.every_pct
        if due or finished:
            self._last = now
            self._last_pct = self._percent()
            self.draw()

    def _percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 100.0

    def _rate(self) -> float:
        return self.done / max(self._clock() - self._t0, 1e-9)

    def line(self) -> str:
        """The progress as text, without any control character."""
        if self.interactive:
            filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
            bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
        else:
            bar = ""
        return (
            f"rollout {bar}{self.done}/{self.total} ({self._percent():.0f}%)"
            f" failed {self.failed}  {self._rate():.1f} ep/s"
        )

    def draw(self) -> None:
        if not self.enabled:
            return
        if self.interactive:
            end = "\n" if self.done >= self.total else ""
            self.stream.write("\r" + self.line() + end)
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
