"""Instructions per step (``valgrind --tool=callgrind``, repeatable under load) of token mode
and chat mode with the HTTP taken out (``canned.py``'s cells): each mode runs under callgrind
twice, with ``n`` sequential-start episodes and with none (start-up, imports and the warm-up
episode), and the difference is divided by the steps. Run by path with the agentkit under test
first on ``PYTHONPATH``::

    PYTHONPATH=. nice python benchmarks/token_mode/instructions.py -n 40

Slow (each run starts Python under valgrind: a few minutes in all). ``--modes
tokens,chat,tokens-bound`` adds goal 2's bound (``bound.py``), its memos primed by a cell of the
same episodes in both of its runs, so the difference counts only the memoised episodes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
_TOTAL = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def _absolute_path() -> str:
    """``PYTHONPATH`` with each entry made absolute: the runs start in this folder, where a
    relative ``.`` would no longer name the checkout under test."""
    entries = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    return os.pathsep.join(os.path.abspath(entry) for entry in entries if entry)


def instructions(mode: str, n: int, tool_calls: int, primed: int = 0) -> int:
    """Instructions of one process running ``canned.cell(mode, n)`` once. ``tokens-bound``:
    token mode with its text work memoised (``bound.py``), after a priming cell of ``primed``
    episodes that makes the same texts (the cells run without real IO, so in the same order)."""
    code = f"import asyncio, canned; asyncio.run(canned.cell({mode!r}, {n}, {tool_calls}))"
    if mode == "tokens-bound":
        code = (
            "import asyncio, bound, canned; bound.install(); "
            f"asyncio.run(canned.cell('tokens', {primed}, {tool_calls})); bound.MISSES.clear(); "
            f"asyncio.run(canned.cell('tokens', {n}, {tool_calls})); "
            "assert not bound.MISSES, bound.MISSES"
        )
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                code,
            ],
            cwd=HERE,
            env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": _absolute_path()},
            check=True,
            capture_output=True,
        )
        found = _TOTAL.search(out.read_bytes())
    if found is None:
        raise RuntimeError("callgrind wrote no total")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=40)
    parser.add_argument("--tool-calls", type=int, default=5)
    parser.add_argument("--modes", default="tokens,chat", help="also: tokens-bound (bound.py)")
    args = parser.parse_args()
    steps = args.n * (args.tool_calls + 1)
    figures: dict[str, float] = {}
    for mode in args.modes.split(","):
        base = instructions(mode, 0, args.tool_calls, primed=args.n)
        full = instructions(mode, args.n, args.tool_calls, primed=args.n)
        figures[mode] = round((full - base) / steps)
    if "tokens" in figures and "chat" in figures:
        figures["tokens_over_chat"] = round(figures["tokens"] / figures["chat"], 3)
    if "tokens-bound" in figures and "chat" in figures:
        figures["bound_over_chat"] = round(figures["tokens-bound"] / figures["chat"], 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
