"""MCPToolset against MCP servers published on PyPI: mcp-server-time, and mcp-server-fetch
reading a page this test serves on 127.0.0.1."""

from __future__ import annotations

import http.server
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

pytest.importorskip("mcp", reason="the mcp extra is not installed")

from agentkit import RunContext, ToolStatus
from agentkit_tools.mcp import MCPToolset, StdioServer

pytestmark = pytest.mark.anyio
CTX: RunContext[Any] = RunContext(deps=None)


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


_LOGS: list[IO[str]] = []


@pytest.fixture(autouse=True)
def _close_logs() -> Iterator[None]:
    yield
    while _LOGS:
        _LOGS.pop().close()


def server(tmp_path: Path, module: str, *args: str) -> StdioServer:
    errlog = (tmp_path / f"{module}.log").open("w")
    _LOGS.append(errlog)  # closed after the test, so no ResourceWarning reaches later tests
    return StdioServer(command=sys.executable, args=["-m", module, *args], errlog=errlog)


@pytest.mark.skipif(not installed("mcp_server_time"), reason="mcp-server-time is not installed")
async def test_time_server(tmp_path: Path) -> None:
    spec = server(tmp_path, "mcp_server_time", "--local-timezone", "UTC")
    async with MCPToolset(spec, prefix="time") as toolset:
        tools = {t.name: t for t in toolset.tools}
        assert {"time_get_current_time", "time_convert_time"} <= set(tools)
        current = tools["time_get_current_time"]
        assert current.parameters["required"] == ["timezone"]
        outcome = await current.call({"timezone": "Asia/Tokyo"}, CTX)
        assert outcome.status is ToolStatus.OK
        assert json.loads(outcome.output)["timezone"] == "Asia/Tokyo"
        converted = await tools["time_convert_time"].call(
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}, CTX
        )
        assert json.loads(converted.output)["target"]["datetime"].endswith("21:00:00+09:00")
        wrong = await current.call({"timezone": "Mars/Olympus_Mons"}, CTX)
        assert wrong.status is ToolStatus.ERROR
        assert "Mars/Olympus_Mons" in wrong.output


PAGE = b"""<!doctype html><html><head><title>Tide tables</title></head><body>
<article><h1>Tide tables for Brest</h1>
<p>High water at Brest is at 06:42 and 19:05; the coefficient is 87.</p></article>
</body></html>"""


@pytest.fixture
def page_url() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: Any) -> None:
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/tides"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.skipif(not installed("mcp_server_fetch"), reason="mcp-server-fetch is not installed")
async def test_fetch_server_reads_a_local_page(tmp_path: Path, page_url: str) -> None:
    spec = server(tmp_path, "mcp_server_fetch", "--ignore-robots-txt", "--allow-private-ips")
    async with MCPToolset(spec, include={"fetch"}) as toolset:
        assert [t.name for t in toolset.tools] == ["fetch"]
        fetch = toolset.tools[0]
        assert "url" in fetch.parameters["required"]
        outcome = await fetch.call({"url": page_url}, CTX)
        assert outcome.status is ToolStatus.OK, outcome.output
        assert "06:42" in outcome.output and "coefficient is 87" in outcome.output
        missing = await fetch.call({"url": page_url.replace("/tides", ":1/x")}, CTX)
        assert missing.status is ToolStatus.ERROR
