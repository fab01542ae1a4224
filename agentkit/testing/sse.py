"""Server-sent events as SGLang writes them: ``data: {json}\\n\\n`` ... ``data: [DONE]\\n\\n``."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = ["common_prefix_length", "open_sse", "send_done", "send_event"]


async def open_sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
    )
    await response.prepare(request)
    return response


async def send_event(response: web.StreamResponse, payload: Any) -> None:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    await response.write(f"data: {data}\n\n".encode())


async def send_done(response: web.StreamResponse) -> None:
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()


def common_prefix_length(a: str, b: str) -> int:
    """Length of the common prefix (holds back a partly decoded multi-byte character)."""
    limit = min(len(a), len(b))
    index = 0
    while index < limit and a[index] == b[index]:
        index += 1
    return index
