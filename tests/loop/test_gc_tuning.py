from __future__ import annotations

import gc

from agentkit import tune_gc


def test_tune_gc_sets_and_returns_previous_thresholds() -> None:
    before = gc.get_threshold()
    try:
        previous = tune_gc(12_345, 7, 9)
        assert previous == before
        assert gc.get_threshold() == (12_345, 7, 9)
    finally:
        gc.set_threshold(*before)
