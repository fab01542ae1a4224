"""A cheap stand-in for SGLang with both endpoints, so that neither mode waits on a slow server.

Every reply is precomputed from the policy's completions (``policy.py``): ``/v1/chat/completions``
answers as SGLang does with its glm45 reasoning and tool parsers (``reasoning_content``,
``tool_calls``), ``/generate`` with the raw completion, its token ids (the test tokenizer's),
one log-prob per token and the stop token that ended it. The turn is read from the raw body
without parsing it: the ``"role":"tool"`` messages of a chat request, the ``<|observation|>``
ids in a ``/generate`` request's ``input_ids`` (each tool turn of the model ended with one).
The agentkit SGLang test server (``--server testing``) is the faithful one; this one costs the
same little per request in both modes, so the client's CPU is all that differs.

Run: ``python -m benchmarks.token_mode.fake_server --port 8800 --tool-calls 5``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
from typing import Any

from aiohttp import web

from agentkit.dialects.glm45 import SPECIAL_TOKENS
from agentkit.testing import load_test_tokenizer
from benchmarks.token_mode.policy import final_completion, tool_call_completion

OBSERVATION = SPECIAL_TOKENS["<|observation|>"]
USER = SPECIAL_TOKENS["<|user|>"]
_TOOL_ROLE = re.compile(rb'"role"\s*:\s*"tool"')
_SPEC = {"spec_verify_ct": 15, "spec_accept_length": 2.0}


def completion_of(turn: int, tool_calls: int) -> tuple[str, int]:
    """The raw completion of ``turn`` and the id of the stop token after it."""
    if turn < tool_calls:
        return tool_call_completion(turn), OBSERVATION
    return final_completion(), USER


def generate_reply(turn: int, tool_calls: int) -> bytes:
    text, stop = completion_of(turn, tool_calls)
    tokenizer = load_test_tokenizer()
    ids = [*tokenizer.encode(text), stop]
    meta = {
        "id": f"bench-{turn}",
        "finish_reason": {"type": "stop", "matched": stop},
        "prompt_tokens": 300 + 45 * turn,
        "weight_version": "default",
        "completion_tokens": len(ids),
        "cached_tokens": 280 + 45 * turn,
        "e2e_latency": 0.001,
        "input_token_logprobs": [],
        "output_token_logprobs": [[-0.125, i, None] for i in ids],
        **_SPEC,
    }
    return json.dumps(
        {"text": tokenizer.decode(ids), "output_ids": ids, "meta_info": meta}
    ).encode()


def chat_reply(turn: int, tool_calls: int) -> bytes:
    text, stop = completion_of(turn, tool_calls)
    reasoning, _, rest = text.removeprefix("<think>").partition("</think>\n")
    message: dict[str, Any] = {"role": "assistant", "content": "", "reasoning_content": reasoning}
    if turn < tool_calls:
        arguments = json.dumps({"key": f"k{turn}"})
        call = {"name": "lookup", "arguments": arguments}
        message["tool_calls"] = [
            {"id": f"call_{turn}", "index": 0, "type": "function", "function": call}
        ]
    else:
        message["content"] = rest
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": "tool_calls" if turn < tool_calls else "stop",
        "matched_stop": None if turn < tool_calls else stop,
    }
    usage = {"prompt_tokens": 300 + 45 * turn, "completion_tokens": 30, "total_tokens": 330}
    body = {
        "id": f"bench-{turn}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "glm-4.5-test",
        "choices": [choice],
        "usage": usage,
        "metadata": {"weight_version": "default"},
        "sglext": {"spec_tokens_details": _SPEC},
    }
    return json.dumps(body).encode()


def generate_turn(body: bytes) -> int:
    """How many tool turns the context holds: ``<|observation|>`` ids in ``input_ids``."""
    start = body.find(b'"input_ids":[')
    end = body.find(b"]", start)
    return body.count(str(OBSERVATION).encode(), start, end) if start >= 0 else 0


def build_app(tool_calls: int, latency_s: float) -> web.Application:
    turns = range(tool_calls + 1)
    generated = [generate_reply(t, tool_calls) for t in turns]
    chatted = [chat_reply(t, tool_calls) for t in turns]

    async def answer(reply: bytes) -> web.Response:
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        return web.Response(body=reply, content_type="application/json")

    async def chat(request: web.Request) -> web.Response:
        body = await request.read()
        return await answer(chatted[min(len(_TOOL_ROLE.findall(body)), tool_calls)])

    async def generate(request: web.Request) -> web.Response:
        body = await request.read()
        return await answer(generated[min(generate_turn(body), tool_calls)])

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/generate", generate)
    app.router.add_get("/health", health)
    return app


async def serve(port: int, tool_calls: int, latency_s: float) -> None:
    runner = web.AppRunner(build_app(tool_calls, latency_s), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    print(f"READY http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0: a free one")
    parser.add_argument("--tool-calls", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.tool_calls, args.latency_ms / 1000))


if __name__ == "__main__":
    main()
