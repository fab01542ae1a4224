"""Tracing off costs nothing (no OpenTelemetry import); OTLP/HTTP export reaches a collector
this test runs on 127.0.0.1."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the otel extra is missing")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agentkit import Agent, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer
from agentkit.tracing import instrument, otlp_tracer_provider

pytestmark = pytest.mark.anyio


def test_agentkit_runs_without_importing_opentelemetry() -> None:
    code = (
        "import sys, agentkit, agentkit.agent, agentkit.models, agentkit.tool\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@tool
def double(x: int) -> int:
    """Double a number.

    Args:
        x: The number.
    """
    return 2 * x


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            bodies.append(self.rfile.read(length))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/traces", bodies
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_otlp_http_export(collector: tuple[str, list[bytes]]) -> None:
    url, bodies = collector
    provider = otlp_tracer_provider(url, service_name="otlp-test")
    completions = [
        format_assistant("Double it.", "", [("double", {"x": 21})], thinking=True),
        format_assistant("Done.", "42", [], thinking=True),
    ]
    async with SGLangTestServer(policy=completions) as server:
        traced = instrument(
            Agent(model=SGLangChat(server.base_url), tools=[double]), tracer_provider=provider
        )
        async with traced:
            assert (await traced.run("Double 21")).ok
    await anyio.to_thread.run_sync(provider.shutdown)
    names: list[str] = []
    services: set[str] = set()
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            for kv in resource_spans.resource.attributes:
                if kv.key == "service.name":
                    services.add(kv.value.string_value)
            for scope in resource_spans.scope_spans:
                names += [span.name for span in scope.spans]
    assert services == {"otlp-test"}
    assert sorted(names) == [
        "chat default",
        "chat default",
        "execute_tool double",
        "invoke_agent agent",
    ]
