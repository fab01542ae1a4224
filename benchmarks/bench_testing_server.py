"""How fast the SGLang test server answers, so benchmarks know it is not their bottleneck.

Measures: building the offline test tokenizer (cold) and loading it, starting a server, and,
for chat (non-stream and stream) and /generate with N concurrent aiohttp clients at zero
simulated latency, the server's CPU time per request (the server runs as a subprocess via
``python -m agentkit.testing serve``; its CPU time is read from /proc, so the figure does not
depend on other load on the machine) and the wall-clock request rate (which does).
Run: ``nice python benchmarks/bench_testing_server.py``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from agentkit.dialects.glm45 import STOP_TOKEN_IDS, render
from agentkit.testing import SGLangTestServer, build_test_tokenizer, load_test_tokenizer
from agentkit.testing.policy import PolicyRequest

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. " * 20},
    {"role": "user", "content": "What is the weather in Paris today?"},
]
CALL = (
    "<think>I should look up the weather in Paris.</think>\n<tool_call>get_weather\n"
    "<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>"
)


def policy(request: PolicyRequest) -> str:
    return CALL


async def load(url: str, path: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = list(bodies)

        async def worker() -> None:
            while queue:
                body = queue.pop()
                async with session.post(url + path, json=body) as response:
                    await response.read()
                    assert response.status == 200, response.status

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - started)


async def server_starts() -> list[float]:
    starts = []
    for _ in range(5):
        started = time.perf_counter()
        async with SGLangTestServer(policy=policy):
            starts.append(time.perf_counter() - started)
    return starts


async def measure(url: str, pid: int, bodies: dict[str, tuple[str, dict[str, Any]]]) -> None:
    count = 2000
    for concurrency in (1, 50):
        for label, (path, body) in bodies.items():
            before = server_cpu_s(pid)
            rate = await load(url, path, [body] * count, concurrency)
            cpu_ms = (server_cpu_s(pid) - before) / count * 1000
            print(
                f"{label:12s} concurrency {concurrency:3d}: server CPU {cpu_ms:5.2f} ms/request,"
                f" {rate:6.0f} requests/s wall"
            )


def server_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        build_test_tokenizer(tmp)
        build_s = time.perf_counter() - started
    started = time.perf_counter()
    tokenizer = load_test_tokenizer()
    load_s = time.perf_counter() - started
    print(f"tokenizer: cold build {build_s * 1000:.0f} ms, load {load_s * 1000:.0f} ms")
    starts = asyncio.run(server_starts())
    print(f"server start+stop (tokenizer loaded): median {statistics.median(starts) * 1000:.1f} ms")

    chat: dict[str, Any] = {"model": "m", "messages": MESSAGES, "tools": TOOLS}
    generate: dict[str, Any] = {
        "input_ids": tokenizer.encode(render(MESSAGES, TOOLS)),
        "sampling_params": {
            "max_new_tokens": 512,
            "skip_special_tokens": False,
            "no_stop_trim": True,
            "stop_token_ids": list(STOP_TOKEN_IDS),
        },
        "return_logprob": True,
    }
    bodies = {
        "chat": ("/v1/chat/completions", chat),
        "chat stream": ("/v1/chat/completions", {**chat, "stream": True}),
        "/generate": ("/generate", generate),
    }
    here = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": f"{here}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "agentkit.testing", "serve"]
    command += ["--policy", "bench_testing_server:policy"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[1]
        asyncio.run(measure(url, process.pid, bodies))
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
