"""The viewer's index and JSON API over real stores: a 10,000-episode store paged and
filtered, one episode read from its own lines, a store that grows while it is viewed."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from agentkit.trajectory.store import read_jsonl
from agentkit.trajectory.viewer import EpisodeFilter, StoreIndex, ViewerServer
from agentkit.trajectory.viewer.demo import append_clones, write_demo_store


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("viewer") / "big.jsonl"
    anyio.run(lambda: write_demo_store(store, total=10_000))
    return store


@pytest.fixture(scope="module")
def truth(big_store: Path) -> Any:
    return read_jsonl(big_store)


@pytest.fixture(scope="module")
def server(big_store: Path) -> Iterator[ViewerServer]:
    with ViewerServer(big_store) as viewer:
        yield viewer


def get(server: ViewerServer, path: str) -> Any:
    with urllib.request.urlopen(server.url + path.lstrip("/")) as response:
        return json.load(response)


def test_index_matches_a_full_read(big_store: Path, truth: Any) -> None:
    index = StoreIndex(big_store)
    assert len(index) == len(truth.episodes) == 10_000
    statuses = Counter(t.end.status.value for t in truth.episodes if t.end)
    assert index.facets()["statuses"] == dict(statuses)
    for traj in truth.episodes[:5] + truth.episodes[-3:]:
        summary = index.summary(traj.episode_id)
        assert summary.model_calls == len(traj.calls)
        assert summary.tool_steps == sum(1 for s in traj.steps if s.step_type == "tool")
        assert traj.end is not None
        assert summary.reward == traj.end.reward and summary.status == traj.end.status.value
        assert summary.prompt_tokens == traj.end.usage.prompt_tokens
        assert index.trajectory(traj.episode_id) == traj


def test_pages_and_filters(server: ViewerServer, truth: Any) -> None:
    page = get(server, "/api/episodes?limit=50&offset=9980")
    assert page["total"] == 10_000 and len(page["items"]) == 20
    assert [i["episode_id"] for i in page["items"]] == [t.episode_id for t in truth.episodes[9980:]]
    ends = [t for t in truth.episodes if t.end is not None]
    want = [
        t.episode_id
        for t in ends
        if t.end.status.value == "completed"
        and t.start.task_id == "retail-7"
        and (t.end.reward or 0) >= 0.5
    ]
    page = get(server, "/api/episodes?status=completed&task=retail-7&min_reward=0.5&limit=500")
    got = [i["episode_id"] for i in page["items"] if i["task_id"] == "retail-7"]
    assert got == want and want
    assert all(i["task_id"].startswith("retail-7") for i in page["items"])
    group = get(server, "/api/episodes?group=g-retail-3&limit=500")
    assert {i["group_id"] for i in group["items"]} == {"g-retail-3"}
    assert group["total"] == sum(1 for t in truth.episodes if t.start.group_id == "g-retail-3")


def test_episode_detail_and_errors(server: ViewerServer, truth: Any) -> None:
    failed = next(t for t in truth.episodes if t.end and t.end.status.value == "model_error")
    view = get(server, f"/api/episodes/{failed.episode_id}")
    assert view["end"]["failure"] == "infrastructure"
    assert view["timeline"][-1]["kind"] == "model_error"
    for path, code in (("/api/episodes/ep_nope", 404), ("/api/episodes?min_reward=high", 400)):
        with pytest.raises(urllib.error.HTTPError) as info:
            get(server, path)
        assert info.value.code == code
        assert "error" in json.loads(info.value.read())


def test_a_growing_store_is_followed(tmp_path: Path) -> None:
    store = tmp_path / "live.jsonl"
    anyio.run(lambda: write_demo_store(store, total=20))
    index = StoreIndex(store)
    assert len(index) == 20
    with store.open("ab") as handle:  # a torn line: a writer in the middle of a record
        handle.write(b'{"kind":"episode_start","schema_version":1,"episode_id":"ep_half')
    index.refresh()
    assert len(index) == 20 and index.bad_lines == 0
    text = store.read_bytes()
    store.write_bytes(text[: text.rfind(b"\n") + 1])
    append_clones(store, 35)
    index.refresh()
    assert len(index) == 35
    assert index.page(EpisodeFilter(), 30, 10).items[-1].episode_id == "ep_clone0000034"


def test_the_view_command_serves_a_store(tmp_path: Path) -> None:
    store = tmp_path / "small.jsonl"
    anyio.run(lambda: write_demo_store(store))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentkit.trajectory.viewer", str(store), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("5 episodes in")
        url = proc.stdout.readline().split()[2]
        with urllib.request.urlopen(url + "api/facets") as response:
            assert json.load(response)["episodes"] == 5
        with urllib.request.urlopen(url) as response:
            assert b"agentkit trajectories" in response.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    missing = subprocess.run(
        [sys.executable, "-m", "agentkit.trajectory.viewer", str(tmp_path / "nope.jsonl")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no such store" in missing.stderr
