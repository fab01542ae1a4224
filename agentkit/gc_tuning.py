"""Garbage-collector settings for many concurrent runs.

With hundreds of concurrent agent runs, CPython's default generation-0 threshold (700) makes the
collector walk the young objects of every in-flight request thousands of times a second; the
runtime benchmark measured 30-40% of client CPU in the collector at N=1000. Raising the
thresholds trades a little peak memory for that CPU.

Two ways to get that:

- :func:`run_gc` (on by default, used by every ``Agent.run``/``send``/``resume``): while at
  least one run is in flight, the thresholds are :data:`RUN_THRESHOLDS`; when the last run
  ends, the previous ones are put back. It only ever replaces CPython's own default
  (700, 10, 10): a process that set its thresholds itself (or disabled the collector) is left
  alone, and so is one that changes them while runs are going. Turn it off with
  ``set_run_gc(False)`` or the environment variable ``AGENTKIT_RUN_GC=0``.
- :func:`tune_gc`: set the thresholds for the whole process now (a batch job's start-up).
"""

from __future__ import annotations

import gc
import os
import threading

CPYTHON_DEFAULT = (700, 10, 10)
RUN_THRESHOLDS = (50_000, 20, 100)


def tune_gc(gen0: int = 50_000, gen1: int = 20, gen2: int = 100) -> tuple[int, int, int]:
    """Raise the collector's thresholds; returns the previous ones so they can be restored.
    Thresholds set this way are the process's own: the end of the runs in flight leaves them."""
    with _STATE.lock:
        previous = gc.get_threshold()
        gc.set_threshold(gen0, gen1, gen2)
        _STATE.saved = None  # nothing for the last run in flight to put back
    return previous


class _RunGC:
    """The reference count of runs in flight and the thresholds to put back."""

    def __init__(self) -> None:
        self.enabled = os.environ.get("AGENTKIT_RUN_GC", "1").strip().lower() not in (
            "0",
            "false",
            "off",
            "no",
        )
        self.active = 0
        self.saved: tuple[int, int, int] | None = None
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.active += 1
            if self.active > 1 or not self.enabled or not gc.isenabled():
                return
            current = gc.get_threshold()
            if current == CPYTHON_DEFAULT:
                self.saved = current
                gc.set_threshold(*RUN_THRESHOLDS)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1
            if self.active > 0 or self.saved is None:
                return
            if gc.get_threshold() == RUN_THRESHOLDS:  # nobody changed them meanwhile
                gc.set_threshold(*self.saved)
            self.saved = None


_STATE = _RunGC()


def set_run_gc(enabled: bool) -> None:
    """Turn the runs' collector thresholds on or off (takes effect at the next first run)."""
    if not isinstance(enabled, bool):
        raise TypeError("enabled must be a bool")
    _STATE.enabled = enabled


def run_gc_enabled() -> bool:
    return _STATE.enabled


class _RunScope:
    """``with run_gc():``: one run in flight from enter to exit (a plain object, not a
    generator's context manager: the loop enters one per run)."""

    __slots__ = ()

    def __enter__(self) -> None:
        _STATE.enter()

    def __exit__(self, *exc: object) -> None:
        _STATE.leave()


_SCOPE = _RunScope()


def run_gc() -> _RunScope:
    """The collector thresholds for the duration of one run (see the module docstring);
    each ``with`` counts one run in flight (the one object is entered once per run)."""
    return _SCOPE
