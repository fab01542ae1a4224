"""Profile one contender at one N under cProfile, against a fresh fake server.

    python -m benchmarks.runtime.profile_cell --contender agentkit --n 1000 [--latency-ms 0]

Prints the top functions by own time and by cumulative time (the warm-up run is not profiled).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats

from benchmarks.runtime.contenders import CONTENDERS
from benchmarks.runtime.fake_server import FakeServer, raise_fd_limit


async def profiled(name: str, base_url: str, n: int, tool_calls: int) -> cProfile.Profile:
    contender = CONTENDERS[name]()
    await contender.setup(base_url, n, max_turns=tool_calls + 2)
    try:
        await contender.run_one()
        gc.collect()
        profile = cProfile.Profile()
        profile.enable()
        await asyncio.gather(*(contender.run_one() for _ in range(n)))
        profile.disable()
        return profile
    finally:
        await contender.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--contender", default="agentkit", choices=sorted(CONTENDERS))
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--tool-calls", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--dump", default=None, help="write the raw stats here (pstats)")
    args = parser.parse_args()
    raise_fd_limit()
    with FakeServer(args.tool_calls, args.latency_ms) as server:
        profile = asyncio.run(profiled(args.contender, server.base_url, args.n, args.tool_calls))
    if args.dump:
        profile.dump_stats(args.dump)
    stats = pstats.Stats(profile)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
