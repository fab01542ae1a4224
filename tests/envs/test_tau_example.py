"""The support-bot example runs on a fresh machine (demo domain, scripted agent and customer)."""

from __future__ import annotations

import subprocess
import sys

from tests.shared import REPO_ROOT


def test_support_bot_example_solves_the_demo_tasks() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "support_bot" / "run.py"), "--task", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "task 5: reward 1.0" in done.stdout
    assert "solved 1/1" in done.stdout
