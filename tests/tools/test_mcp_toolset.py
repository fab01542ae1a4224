"""MCPToolset against the example notes server (examples/mcp_agent/notes_server.py), over stdio
and streamable HTTP on 127.0.0.1, including the server dying mid-run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

pytest.importorskip("mcp", reason="the mcp extra is not installed")

from agentkit import RunContext, ToolStatus
from agentkit_tools.mcp import HttpServer, MCPConnectionError, MCPToolset, StdioServer

pytestmark = pytest.mark.anyio

SERVER = Path(__file__).resolve().parents[2] / "examples" / "mcp_agent" / "notes_server.py"
CTX: RunContext[Any] = RunContext(deps=None, run_id="test")


@pytest.fixture
def stdio_server(tmp_path: Path) -> Iterator[StdioServer]:
    with open(tmp_path / "server.log", "w") as errlog:
        yield StdioServer(command=sys.executable, args=[str(SERVER)], name="notes", errlog=errlog)


def by_name(toolset: MCPToolset) -> dict[str, Any]:
    return {t.name: t for t in toolset.tools}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); read its state
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


async def test_tools_keep_their_schemas_and_results_map_to_outcomes(
    stdio_server: StdioServer,
) -> None:
    async with MCPToolset(stdio_server, prefix="notes") as toolset:
        tools = by_name(toolset)
        assert set(tools) >= {"notes_add", "notes_save_note", "notes_fail", "notes_crash"}
        add = tools["notes_add"]
        assert add.parameters["required"] == ["a", "b"]
        assert add.parameters["properties"]["a"]["type"] == "integer"
        assert add.schema()["function"]["description"] == "Add two integers."

        ok = await add.call({"a": 2, "b": 40}, CTX)
        assert ok.status is ToolStatus.OK and ok.output == "42"

        bad = await add.call({"a": 2}, CTX)
        assert bad.status is ToolStatus.INVALID_ARGUMENTS and "b" in (bad.error or "")

        failed = await tools["notes_fail"].call({"reason": "disk full"}, CTX)
        assert failed.status is ToolStatus.ERROR
        assert failed.output.startswith("Error:")

        await tools["notes_save_note"].call({"text": "buy milk"}, CTX)
        listed = await tools["notes_list_notes"].call({}, CTX)
        assert listed.output == "buy milk"


async def test_a_slow_call_times_out_and_the_connection_stays(stdio_server: StdioServer) -> None:
    async with MCPToolset(stdio_server, timeout=1.0) as toolset:
        tools = by_name(toolset)
        slow = await tools["slow"].call({"seconds": 30}, CTX)
        assert slow.status is ToolStatus.TIMEOUT
        again = await tools["add"].call({"a": 1, "b": 1}, CTX)
        assert again.status is ToolStatus.OK and again.output == "2"
        assert toolset.connects == 1


async def test_server_death_is_an_error_observation_then_it_reconnects(
    stdio_server: StdioServer,
) -> None:
    async with MCPToolset(stdio_server) as toolset:
        tools = by_name(toolset)
        first_pid = int((await tools["pid"].call({}, CTX)).output)
        crashed = await tools["crash"].call({}, CTX)
        assert crashed.status is ToolStatus.ERROR
        assert crashed.error_type == "MCPConnectionError"
        assert "notes" in crashed.output
        second = await tools["pid"].call({}, CTX)
        assert second.status is ToolStatus.OK
        second_pid = int(second.output)
        assert second_pid != first_pid
        assert toolset.connects == 2
    for _ in range(50):
        if not alive(second_pid):
            break
        await anyio.sleep(0.1)
    assert not alive(second_pid), "closing the toolset must end the server process"


async def test_parallel_calls_share_one_connection(stdio_server: StdioServer) -> None:
    results: dict[int, str] = {}
    async with MCPToolset(stdio_server) as toolset:
        add = by_name(toolset)["add"]

        async def one(i: int) -> None:
            results[i] = (await add.call({"a": i, "b": 1000}, CTX)).output

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(one, i)
        assert toolset.connects == 1
    assert results == {i: str(i + 1000) for i in range(8)}


async def test_calls_after_close_are_errors(stdio_server: StdioServer) -> None:
    async with MCPToolset(stdio_server) as toolset:
        add = by_name(toolset)["add"]
    outcome = await add.call({"a": 1, "b": 2}, CTX)
    assert outcome.status is ToolStatus.ERROR and "closed" in outcome.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_http(port: int, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--http", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"notes server exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("notes server did not listen within 30 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


async def test_streamable_http_kill_mid_run_then_reconnect(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "http.log"
    proc = start_http(port, log)
    try:
        async with MCPToolset(HttpServer(url=f"http://127.0.0.1:{port}/mcp")) as toolset:
            tools = by_name(toolset)
            assert (await tools["add"].call({"a": 3, "b": 4}, CTX)).output == "7"
            stop(proc)
            dead = await tools["add"].call({"a": 3, "b": 4}, CTX)
            assert dead.status is ToolStatus.ERROR
            assert "MCP server" in dead.output
            proc = start_http(port, log)
            back = await tools["add"].call({"a": 5, "b": 6}, CTX)
            assert back.status is ToolStatus.OK and back.output == "11"
            assert toolset.connects >= 2
    finally:
        stop(proc)


async def test_unreachable_server_fails_to_open() -> None:
    port = free_port()
    with pytest.raises(MCPConnectionError, match="could not connect"):
        async with MCPToolset(HttpServer(url=f"http://127.0.0.1:{port}/mcp"), connect_timeout=10):
            pass


async def test_a_command_that_does_not_start_fails_to_open(tmp_path: Path) -> None:
    missing = StdioServer(command=str(tmp_path / "no-such-server"), name="ghost")
    with pytest.raises(
        MCPConnectionError, match="could not connect to MCP server ghost: FileNotFoundError"
    ):
        async with MCPToolset(missing, connect_timeout=10):
            pass
