"""Loading domains from tau-bench's own checkout layout, and task ranges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.envs import load_domain
from agentkit.envs.tasks import parse_range

TASKS_PY = """
from tau_bench.types import Action, Task

TASKS_TEST = [
    Task(
        annotator="0",
        user_id="ann_lee_1",
        instruction="You are Ann.",
        actions=[
            Action(name="modify_user_address", kwargs={"user_id": "ann_lee_1", "address1": "1 A St",
                   "address2": "", "city": "X", "state": "Y", "country": "USA", "zip": "00001"}),
        ],
        outputs=["150.0"],
    ),
]
"""


def _tau_bench_layout(root: Path) -> Path:
    data = root / "retail" / "data"
    data.mkdir(parents=True)
    user = {
        "name": {"first_name": "Ann", "last_name": "Lee"},
        "address": {
            "address1": "",
            "address2": "",
            "city": "",
            "country": "",
            "state": "",
            "zip": "1",
        },
        "email": "ann@example.com",
        "payment_methods": {
            "gift_card_1": {"source": "gift_card", "id": "gift_card_1", "balance": 150}
        },
        "orders": [],
    }
    (data / "users.json").write_text(json.dumps({"ann_lee_1": user}))
    (data / "orders.json").write_text("{}")
    (data / "products.json").write_text("{}")
    (root / "retail" / "wiki.md").write_text("# Tiny policy\n")
    (root / "retail" / "tasks_test.py").write_text(TASKS_PY)
    return data


@pytest.mark.anyio
async def test_tau_bench_checkout_layout_with_python_tasks(tmp_path: Path) -> None:
    domain = load_domain("retail", _tau_bench_layout(tmp_path))
    assert domain.policy == "# Tiny policy\n"
    assert len(domain.tasks) == 1
    task = domain.tasks[0]
    assert task.outputs == ["150.0"] and task.actions[0].kwargs["zip"] == "00001"
    state = domain.new_episode(task, 0)
    assert state.step("find_user_id_by_email", {"email": "ANN@example.com"}) == "ann_lee_1"
    assert isinstance(
        state.data["users"]["ann_lee_1"]["payment_methods"]["gift_card_1"]["balance"], int
    )
    assert domain.gold_hash(task, 0) != state.db_hash()
    state.step(task.actions[0].name, task.actions[0].kwargs)
    assert domain.gold_hash(task, 0) == state.db_hash()


def test_task_ranges() -> None:
    assert parse_range("0-3", 10) == [0, 1, 2, 3]
    assert parse_range("1,4,7-8", 10) == [1, 4, 7, 8]
    assert parse_range("all", 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="out of range"):
        parse_range("5-12", 10)
    with pytest.raises(ValueError, match="bad task range"):
        parse_range("4-2", 10)
