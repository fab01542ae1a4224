"""A minimal OpenAI-compatible chat server for the runtime benchmark, run in its own process(es).

Every reply is precomputed: while a request holds fewer than K tool messages the server answers
with one call of the ``lookup`` tool, then with a final text. The turn is found by counting
``"role": "tool"`` in the raw body (no JSON parse, so the server stays cheap). An optional fixed
latency per request stands in for the model. Several worker processes can share the port with
``SO_REUSEPORT``.

Run: ``python -m benchmarks.runtime.fake_server --port 8700 --tool-calls 5 --latency-ms 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

TOOL_NAME = "lookup"
FINAL_TEXT = "All lookups done."
_TOOL_ROLE = re.compile(rb'"role"\s*:\s*"tool"')


def tool_call_reply(turn: int) -> dict[str, Any]:
    """The completion of turn ``turn`` (0-based) when the model still has tools to call."""
    call = {
        "id": f"call_{turn}",
        "type": "function",
        "function": {"name": TOOL_NAME, "arguments": json.dumps({"key": f"k{turn}"})},
    }
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return _completion(message, "tool_calls")


def final_reply() -> dict[str, Any]:
    return _completion({"role": "assistant", "content": FINAL_TEXT}, "stop")


def _completion(message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake",
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def build_app(tool_calls: int, latency_s: float) -> web.Application:
    """The aiohttp application: ``/v1/chat/completions`` and ``/health``."""
    replies = [json.dumps(tool_call_reply(t)).encode() for t in range(tool_calls)]
    replies.append(json.dumps(final_reply()).encode())

    async def chat(request: web.Request) -> web.Response:
        body = await request.read()
        turn = min(len(_TOOL_ROLE.findall(body)), tool_calls)
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        return web.Response(body=replies[turn], content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)
    return app


async def serve(port: int, tool_calls: int, latency_s: float) -> None:
    runner = web.AppRunner(build_app(tool_calls, latency_s), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_port=True, backlog=4096)
    await site.start()
    await asyncio.Event().wait()


def raise_fd_limit() -> None:
    """Thousands of concurrent connections need more descriptors than the usual 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


REPO_ROOT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    """The environment of a child process that imports ``benchmarks.runtime``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeServer:
    """Start ``workers`` server processes on one port; ``stop`` ends them."""

    def __init__(self, tool_calls: int, latency_ms: float = 0.0, workers: int = 1) -> None:
        self.tool_calls = tool_calls
        self.latency_ms = latency_ms
        self.workers = workers
        self.port = free_port()
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        command = [
            sys.executable,
            "-m",
            "benchmarks.runtime.fake_server",
            "--port",
            str(self.port),
            "--tool-calls",
            str(self.tool_calls),
            "--latency-ms",
            str(self.latency_ms),
        ]
        self._procs = [
            subprocess.Popen(command, cwd=REPO_ROOT, env=child_env()) for _ in range(self.workers)
        ]
        deadline = time.monotonic() + timeout_s
        while True:
            for proc in self._procs:
                if proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"fake server exited with code {proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=1) as resp:
                    if resp.status == 200:
                        if self.workers > 1:
                            time.sleep(1.0)  # let the other workers bind the shared port too
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fake server did not become ready")
            time.sleep(0.05)

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs = []

    def __enter__(self) -> FakeServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tool-calls", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    raise_fd_limit()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.tool_calls, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
