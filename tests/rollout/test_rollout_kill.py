"""A rollout process killed with SIGKILL mid-run: the store keeps every completed record and a
rerun completes only the missing episodes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest

from agentkit.testing import SGLangTestServer
from agentkit.trajectory.records import ModelCallRecord
from agentkit.trajectory.store import read_store
from tests import rollout_fixture as fx
from tests.shared import REPO_ROOT

pytestmark = pytest.mark.anyio

N_TASKS, N_SAMPLES = 4, 3


def _command(store: Path) -> list[str]:
    return [
        sys.executable, "-m", "agentkit.trajectory.cli", "rollout",
        "--agent", "tests.rollout_fixture:make_agent",
        "--tasks", "tests.rollout_fixture:default_tasks",
        "--reward", "tests.rollout_fixture:reward",
        "--store", str(store), "--n", str(N_SAMPLES), "--concurrency", "2",
        "--fsync", "never", "--no-progress",
    ]  # fmt: skip


def _env(url: str, block: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ROLLOUT_SERVER_URL=url,
        ROLLOUT_BLOCK=block,
        ROLLOUT_TASKS=str(N_TASKS),
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]),
    )
    return env


def _stuck(store: Path) -> bool:
    if not store.exists():
        return False
    contents = read_store(store)
    return (
        len(contents.finished) == 2 * N_SAMPLES
        and all(t.calls for t in contents.unfinished)
        and len(contents.unfinished) == 2
    )


@pytest.mark.slow
async def test_sigkill_mid_rollout_then_resume(tmp_path: Path) -> None:
    store = tmp_path / "run.jsonl"
    total = N_TASKS * N_SAMPLES
    async with SGLangTestServer(policy=fx.policy) as server:
        process = await anyio.open_process(
            _command(store), env=_env(server.base_url, "question 2,question 3"), cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            # tasks t0 and t1 finish; the tool then hangs in the first two t2 episodes, so the
            # kill lands mid-run whatever the machine's speed
            with anyio.fail_after(120):
                while not _stuck(store):
                    assert process.returncode is None, "the rollout ended before it was killed"
                    await anyio.sleep(0.05)
        finally:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        assert process.returncode == -signal.SIGKILL

        killed = read_store(store)
        assert all(b.torn for b in killed.bad_lines)  # at most the torn last line
        finished = {(t.start.task_id, t.start.sample_index) for t in killed.finished}
        assert finished == {(f"t{i}", k) for i in range(2) for k in range(N_SAMPLES)}
        assert len(killed.unfinished) == 2
        # every call that reached the store is exactly what the server received and answered
        sent = {
            tuple(r.request["input_ids"]): list(r.response["output_ids"])
            for r in server.generation_requests()
            if r.status == 200
        }
        calls = [c for t in killed.episodes for c in t.calls]
        assert calls
        for call in calls:
            assert isinstance(call, ModelCallRecord)
            assert call.input_ids is not None
            assert sent[tuple(call.input_ids)] == call.output_ids
        for traj in killed.episodes:
            assert [c.index for c in traj.calls] == list(range(len(traj.calls)))

        rerun = await anyio.run_process(
            _command(store), env=_env(server.base_url, ""), cwd=REPO_ROOT, check=False
        )
        assert rerun.returncode == 0, rerun.stderr.decode()
        summary = json.loads(rerun.stdout.decode().strip().splitlines()[-1])
        assert summary["skipped"] == len(finished)
        assert summary["ran"] == summary["completed"] == total - len(finished)

    final = read_store(store)
    pairs = Counter((t.start.task_id, t.start.sample_index) for t in final.finished)
    assert set(pairs) == {(f"t{i}", k) for i in range(N_TASKS) for k in range(N_SAMPLES)}
    assert set(pairs.values()) == {1}
    # the episodes cut off by the kill stay visible as unfinished, never as finished
    assert len(final.unfinished) == len(killed.unfinished)
