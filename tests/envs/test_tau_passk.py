"""pass^k on hand-computed cases."""

from __future__ import annotations

import pytest

from agentkit.envs.passk import pass_hat_k, pass_hat_k_task, pass_hat_ks


def test_single_task_values() -> None:
    # 4 trials, 2 successes: C(2,1)/C(4,1) = 2/4, C(2,2)/C(4,2) = 1/6, C(2,3) = 0
    assert pass_hat_k_task(2, 4, 1) == pytest.approx(0.5)
    assert pass_hat_k_task(2, 4, 2) == pytest.approx(1 / 6)
    assert pass_hat_k_task(2, 4, 3) == 0.0
    # 4 trials, 3 successes: 3/4, 3/6, 1/4, 0
    assert [pass_hat_k_task(3, 4, k) for k in (1, 2, 3, 4)] == pytest.approx([0.75, 0.5, 0.25, 0.0])
    assert pass_hat_k_task(4, 4, 4) == 1.0


def test_mean_over_tasks() -> None:
    outcomes = {
        0: [True, True, True, True],  # 1, 1, 1, 1
        1: [True, False, True, False],  # 1/2, 1/6, 0, 0
        2: [False, False, False, False],  # 0, 0, 0, 0
    }
    got = pass_hat_ks(outcomes)
    assert got == pytest.approx({1: 0.5, 2: (1 + 1 / 6) / 3, 3: 1 / 3, 4: 1 / 3})
    assert pass_hat_k(outcomes, 1) == pytest.approx(0.5)


def test_k_beyond_trials_is_rejected() -> None:
    with pytest.raises(ValueError, match="k must be"):
        pass_hat_k_task(1, 2, 3)
    with pytest.raises(ValueError, match="successes"):
        pass_hat_k_task(3, 2, 1)
    assert pass_hat_ks({}) == {}
