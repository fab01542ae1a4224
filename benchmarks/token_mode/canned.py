"""Token mode against chat mode with the HTTP taken out: agentkit's own work per step.

The same episodes as ``worker.py``, but the transport is set to post through aiohttp
(``own_client=False``) and its aiohttp session is replaced by one that answers each post with the fake server's precomputed reply bytes for the turn: the request body
is encoded and the reply decoded by the transport itself (so their cost stays in). Chat and token cells alternate in one process; each figure is
``time.process_time()`` over N episodes. Run by path, with the agentkit under test first on
``PYTHONPATH`` (its ``benchmarks`` package supplies the fake replies)::

    PYTHONPATH=. nice python benchmarks/token_mode/canned.py --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import statistics
import time
from collections.abc import Mapping
from typing import Any

from worker import Episodes  # type: ignore[import-not-found]

from benchmarks.token_mode.fake_server import chat_reply, generate_reply

_RID = re.compile(rb'"rid":"([^"]*)"')


def _rid(body: Any) -> str:
    """The request id of a body, a dict or JSON bytes (read without decoding the body, whose
    cost would be charged to the mode)."""
    if isinstance(body, bytes):
        # the rid follows the ids (generate_body writes them first): found from the end, so
        # that this harness does not scan the whole context on token mode's account
        found = _RID.match(body, body.rfind(b'"rid":"'))
        assert found is not None, "a /generate body without its rid"
        return found.group(1).decode()
    return str(body["rid"])


class _Content:
    """The body stream of :class:`_Reply`: the whole body in one piece, then the end."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    async def readany(self) -> bytes:
        await asyncio.sleep(0)
        raw, self._raw = self._raw, b""
        return raw


class _Reply:
    """What the transport reads of an aiohttp response: the status, the headers and the body
    (``read`` for a body framed by its length, as a server's is; in pieces from ``content``
    otherwise)."""

    status = 200

    def __init__(self, raw: bytes) -> None:
        self.headers: Mapping[str, str] = {"Content-Length": str(len(raw))}
        self.content = _Content(raw)
        self._raw = raw

    async def read(self) -> bytes:
        await asyncio.sleep(0)
        return self._raw

    def close(self) -> None:
        return None

    async def __aenter__(self) -> _Reply:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Session:
    """Stands in for the transport's ``aiohttp.ClientSession``: ``post`` answers with the fake
    server's precomputed reply for the turn; the body arrives encoded, as it would be sent."""

    def __init__(self, mode: str, tool_calls: int) -> None:
        self.mode = mode
        self.tool_calls = tool_calls
        self.generated = [generate_reply(t, tool_calls) for t in range(tool_calls + 1)]
        self.chatted = [chat_reply(t, tool_calls) for t in range(tool_calls + 1)]

    def post(self, url: str, *, data: bytes, headers: Mapping[str, str]) -> _Reply:
        if self.mode == "tokens":
            # the call's index in its episode, from the request id (``episode-index-suffix``):
            # counting ``<|observation|>`` in ``input_ids`` here, as the fake server does on its
            # side, would charge token mode for the server's work
            turn = int(_rid(data).rsplit("-", 2)[1])
            return _Reply(self.generated[min(turn, self.tool_calls)])
        turn = data.count(b'"role":"tool"')
        return _Reply(self.chatted[min(turn, self.tool_calls)])


async def cell(mode: str, n: int, tool_calls: int) -> float:
    episodes = Episodes(mode, "http://127.0.0.1:9", tool_calls)
    session = _Session(mode, tool_calls)
    transport = episodes.agent.model.transport
    # the canned session stands where aiohttp's would; the own HTTP/1.1 client would open a
    # socket to the unused address instead
    transport.own_client = False
    transport._session = lambda: session
    try:
        assert await episodes.run_one(), f"{mode}: the warm-up episode failed"
        gc.collect()
        cpu0 = time.process_time()
        outcomes = await asyncio.gather(*(episodes.run_one() for _ in range(n)))
        cpu = time.process_time() - cpu0
    finally:
        await episodes.agent.aclose()
    assert all(outcomes), f"{mode}: an episode did not complete"
    return 1000 * cpu / max(1, n * (tool_calls + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--tool-calls", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"chat": [], "tokens": []}
    for number in range(args.rounds):
        order = ("chat", "tokens") if number % 2 == 0 else ("tokens", "chat")
        for mode in order:
            figures[mode].append(asyncio.run(cell(mode, args.n, args.tool_calls)))
    ratios = [t / c for t, c in zip(figures["tokens"], figures["chat"], strict=True)]
    print(
        json.dumps(
            {
                "chat_ms_per_step": round(statistics.median(figures["chat"]), 4),
                "tokens_ms_per_step": round(statistics.median(figures["tokens"]), 4),
                "tokens_over_chat": round(statistics.median(ratios), 3),
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
