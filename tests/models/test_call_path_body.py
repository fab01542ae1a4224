"""A request body may be a JSON object or JSON already encoded as bytes: the bytes go out as they
are, with the JSON content type, on both HTTP clients (aiohttp under asyncio, httpx under trio)
and for a JSON reply as for a stream."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agentkit.messages import UserMessage
from agentkit.models import ModelRequest, SGLangChat
from agentkit.models.transport import Events, Transport
from agentkit.models.urls import ROUTING_KEY_HEADER
from agentkit.trajectory.records import Attempt

pytestmark = pytest.mark.anyio


class _Echo(BaseHTTPRequestHandler):
    """Replies with what it received: the raw body and the content type, as JSON (or as one
    SSE event then ``[DONE]`` on ``/stream``)."""

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        seen = {
            "body": raw.decode("latin-1"),
            "content_type": self.headers["Content-Type"],
            "content_types": self.headers.get_all("Content-Type"),
            "routing_key": self.headers.get(ROUTING_KEY_HEADER),
        }
        if self.path == "/stream":
            payload = b"data: " + json.dumps(seen).encode() + b"\n\ndata: [DONE]\n\n"
            kind = "text/event-stream"
        else:
            payload, kind = json.dumps(seen).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    if request.param == "trio":
        pytest.importorskip("trio")
    return str(request.param)


# Spacing and key order no encoder of a dict would produce: proof the bytes were not re-encoded.
ENCODED = b'{ "z" : 1,  "a" : ["\xc3\xa9"] }'


async def _first(events: Events) -> dict[str, Any]:
    first: dict[str, Any] | None = None
    async for event in events:
        first = first or event
    assert first is not None
    return first


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_encoded_bytes_are_sent_as_they_are(echo_url: str, stream: bool) -> None:
    transport = Transport()
    attempts: list[Attempt] = []
    try:
        seen = await transport.post(
            f"{echo_url}/stream" if stream else f"{echo_url}/echo",
            ENCODED,
            validate=lambda reply: reply,
            consume=_first if stream else None,
            attempts=attempts,
        )
    finally:
        await transport.aclose()
    assert seen["body"].encode("latin-1") == ENCODED
    assert seen["content_type"] == "application/json"
    assert [a.ok for a in attempts] == [True]


async def test_a_dict_body_is_encoded(echo_url: str) -> None:
    transport = Transport()
    try:
        seen = await transport.request_json(
            f"{echo_url}/echo", {"z": 1, "a": ["é"]}, lambda r: r, attempts=[]
        )
    finally:
        await transport.aclose()
    assert json.loads(seen["body"].encode("latin-1")) == {"z": 1, "a": ["é"]}
    assert seen["content_type"] == "application/json"


@pytest.mark.parametrize(
    "headers",
    [
        {ROUTING_KEY_HEADER: "ep_1"},
        {"content-type": "application/json", ROUTING_KEY_HEADER: "ep_1"},
    ],
    ids=["without-content-type", "with-it"],
)
async def test_headers_go_with_one_json_content_type(
    echo_url: str, headers: dict[str, str]
) -> None:
    transport = Transport()
    try:
        seen = await transport.request_json(
            f"{echo_url}/echo", {"a": 1}, lambda r: r, attempts=[], headers=headers
        )
    finally:
        await transport.aclose()
    assert seen["routing_key"] == "ep_1"
    assert seen["content_types"] == ["application/json"]


async def test_a_chat_session_sends_its_routing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []

    async def capture(self: Transport, url: str, body: Any, validate: Any, **kwargs: Any) -> Any:
        sent.append(kwargs["headers"])
        raise RuntimeError("captured")

    monkeypatch.setattr(Transport, "request_json", capture)
    session = SGLangChat("http://127.0.0.1:9").session(routing_key="ep_7")
    with pytest.raises(RuntimeError, match="captured"):
        await session.generate(ModelRequest(messages=[UserMessage(content="hi")]))
    ((key, value),) = [(k, v) for k, v in sent[0].items() if k.lower() != "content-type"]
    assert (key, value) == (ROUTING_KEY_HEADER, "ep_7")
