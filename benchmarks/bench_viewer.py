"""Trajectory viewer: how fast a large store opens, pages and shows one episode.

Builds a demo store (real token-mode episodes from the scripted test server, then clones) of
``--episodes`` episodes, then times the index pass, a filtered page and one episode's detail
over HTTP, against reading the whole store (what a viewer without an index would do). Run:

    nice python benchmarks/bench_viewer.py [--episodes 10000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from pathlib import Path

import anyio

from agentkit.trajectory.store import read_jsonl
from agentkit.trajectory.viewer import EpisodeFilter, ViewerServer
from agentkit.trajectory.viewer.demo import write_demo_store


def timed(label: str, fn: object, repeat: int = 1) -> object:
    start = time.perf_counter()
    result = None
    for _ in range(repeat):
        result = fn()  # type: ignore[operator]
    took = (time.perf_counter() - start) / repeat
    print(f"{label:<48} {took * 1000:9.1f} ms")
    return result


def main(episodes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.jsonl"
        start = time.perf_counter()
        anyio.run(lambda: write_demo_store(store, total=episodes))
        size = store.stat().st_size / 1e6
        print(
            f"store: {episodes} episodes, {size:.1f} MB, built in {time.perf_counter() - start:.1f} s"
        )
        timed("read the whole store (read_jsonl)", lambda: read_jsonl(store))
        viewer = timed("index pass (ViewerServer start)", lambda: ViewerServer(store))
        assert isinstance(viewer, ViewerServer)
        with viewer:

            def get(path: str) -> object:
                with urllib.request.urlopen(viewer.url + path) as response:
                    return json.load(response)

            timed("GET /api/facets", lambda: get("api/facets"), 20)
            timed("GET /api/episodes (first page of 50)", lambda: get("api/episodes"), 20)
            timed(
                "GET /api/episodes?status=completed&task=retail-7",
                lambda: get("api/episodes?status=completed&task=retail-7"),
                20,
            )
            last = viewer.index.page(EpisodeFilter(), episodes - 1, 1).items[0]
            timed(
                "GET /api/episodes/ID (last episode)",
                lambda: get(f"api/episodes/{last.episode_id}"),
                20,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=10_000)
    main(parser.parse_args().episodes)
