"""Browse trajectories: record a demo store (or use yours) and serve the viewer on 127.0.0.1.

python examples/trajectory_viewer/run.py                   # demo store of 1,000 episodes
python examples/trajectory_viewer/run.py --episodes 10000  # a large one
python examples/trajectory_viewer/run.py --store runs/store.jsonl
agentkit view runs/store.jsonl --tokenizer path/to/tokenizer.json   # the same, as a command
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import anyio

from agentkit.testing import build_test_tokenizer
from agentkit.tokenizer import load_tokenizer
from agentkit.trajectory.viewer import ViewerServer
from agentkit.trajectory.viewer.demo import write_demo_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, default=None)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--port", type=int, default=8321)
    args = parser.parse_args()
    tokenizer = None
    store = args.store
    if store is None:
        store = Path("demo-trajectories.jsonl")
        print(f"recording {args.episodes} demo episodes into {store} ...")
        anyio.run(lambda: write_demo_store(store, total=args.episodes))
        tokenizer = load_tokenizer(build_test_tokenizer())  # the demo's tokenizer
    viewer = ViewerServer(store, port=args.port, tokenizer=tokenizer)
    print(f"{len(viewer.index)} episodes; open {viewer.url} (Ctrl-C stops)")
    with contextlib.suppress(KeyboardInterrupt):
        viewer.serve_forever()


if __name__ == "__main__":
    main()
