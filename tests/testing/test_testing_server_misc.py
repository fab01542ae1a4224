"""The SGLang test server's info endpoints, fault injection, policies, sync/trio use and CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import typer

from agentkit.dialects.glm45 import render
from agentkit.testing import (
    Completion,
    DialoguePolicy,
    Fault,
    FaultKind,
    SGLangTestServer,
    parse_prompt,
)
from agentkit.testing.cli import parse_fault

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "days": {"type": "integer"},
                    "flags": {"type": "object"},
                },
            },
        },
    }
]
ANSWER = "<think>ok</think>\nDone."


def chat_body(user: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": user}], **extra}


@pytest.mark.anyio
async def test_info_endpoints() -> None:
    async with (
        SGLangTestServer(policy=[], model="glm-4.5-air") as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        for path in ("/health", "/health_generate"):
            assert (await client.get(path)).status_code == 200
        info = (await client.get("/model_info")).json()
        assert info == (await client.get("/get_model_info")).json()
        assert info["model_path"] == "glm-4.5-air"
        assert info["is_generation"] is True
        assert info["tool_call_parser"] == "glm45"
        assert info["architectures"] == ["Glm4MoeForCausalLM"]
        server_info = (await client.get("/server_info")).json()
        assert server_info == (await client.get("/get_server_info")).json()
        assert server_info["speculative_algorithm"] == "EAGLE"
        assert server_info["internal_states"][0]["avg_spec_accept_length"] == 2.0
        assert "version" in server_info
        models = (await client.get("/v1/models")).json()
        assert models["object"] == "list"
        assert models["data"][0]["id"] == "glm-4.5-air"
        assert (await client.get("/flush_cache")).status_code == 200
        assert (await client.post("/flush_cache")).status_code == 200
        abort = await client.post("/abort_request", json={"abort_all": True})
        assert abort.status_code == 200
        assert (await client.get("/nope")).status_code == 404
        paths = [record.path for record in server.requests]
    assert paths[:2] == ["/health", "/health_generate"]
    assert "/abort_request" in paths


@pytest.mark.anyio
async def test_fail_next_and_drop_next() -> None:
    async with SGLangTestServer(policy=[ANSWER, ANSWER]) as server:
        server.fail_next(2, status=503)
        server.drop_next(1)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            with pytest.raises(httpx.TransportError):
                await client.post("/v1/chat/completions", json=chat_body())
            first = await client.post("/v1/chat/completions", json=chat_body())
            second = await client.post("/generate", json={"text": "x"})
            assert (await client.get("/health")).status_code == 200  # not affected
            ok = await client.post("/v1/chat/completions", json=chat_body())
        records = server.generation_requests()
    assert first.status_code == 503
    assert first.json()["code"] == 503
    assert second.status_code == 503
    assert "error" in second.json()
    assert ok.status_code == 200
    assert [r.status for r in records] == [0, 503, 503, 200]
    assert records[0].dropped


@pytest.mark.anyio
async def test_weight_update_endpoints() -> None:
    async with (
        SGLangTestServer(policy=[ANSWER, ANSWER, ANSWER]) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        first = (await client.post("/generate", json={"text": "same prompt"})).json()
        ok = await client.post("/update_weight_version", json={"new_version": "v2"})
        second = (await client.post("/generate", json={"text": "same prompt"})).json()
        bad = await client.post("/update_weight_version", json={})
        disk = await client.post(
            "/update_weights_from_disk", json={"model_path": "/m", "weight_version": "v3"}
        )
        third = (await client.post("/generate", json={"text": "same prompt"})).json()
    assert first["meta_info"]["weight_version"] == "default"
    assert ok.json()["success"] is True
    assert second["meta_info"]["weight_version"] == "v2"
    assert second["meta_info"]["cached_tokens"] > 0
    assert bad.status_code == 400
    assert disk.json()["success"] is True
    assert third["meta_info"]["weight_version"] == "v3"
    assert third["meta_info"]["cached_tokens"] == 0  # loading weights flushes the cache


@pytest.mark.anyio
async def test_latency_and_weight_version() -> None:
    async with SGLangTestServer(policy=[ANSWER], latency_s=0.01) as server:
        server.weight_version = "step-7"
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            data = (await client.post("/generate", json={"text": "x"})).json()
    assert data["meta_info"]["weight_version"] == "step-7"


def test_sync_use_and_restart_safety() -> None:
    server = SGLangTestServer(policy=[ANSWER])
    with pytest.raises(RuntimeError):
        _ = server.base_url
    with server:
        response = httpx.post(f"{server.base_url}/v1/chat/completions", json=chat_body())
        assert response.json()["choices"][0]["message"]["content"] == "Done."
        with pytest.raises(RuntimeError):
            server.start()
    with pytest.raises(RuntimeError):
        _ = server.base_url


def _trio_usable() -> bool:
    try:
        import trio  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return False
    major, minor = (int(part) for part in trio.__version__.split(".")[:2])
    return (major, minor) >= (0, 23)  # anyio 4 needs trio's abandon_on_cancel (0.23+)


@pytest.mark.parametrize(
    "anyio_backend",
    [
        "asyncio",
        pytest.param(
            "trio",
            marks=pytest.mark.skipif(not _trio_usable(), reason="trio missing or older than 0.23"),
        ),
    ],
)
@pytest.mark.anyio
async def test_works_under_any_backend(anyio_backend: str) -> None:
    async with (
        SGLangTestServer(policy=[ANSWER]) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        response = await client.post("/v1/chat/completions", json=chat_body())
    assert response.status_code == 200


@pytest.mark.anyio
async def test_dialogue_policy_serves_concurrent_episodes() -> None:
    policy = DialoguePolicy(
        {
            "episode A": ["<think>a1</think>\nA one", "<think>a2</think>\nA two"],
            "episode B": ["<think>b1</think>\nB one"],
        },
        fallback=lambda request: Completion("fallback"),
    )
    results: dict[str, list[str]] = {}

    async with (
        SGLangTestServer(policy=policy) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):

        async def episode(first: str, turns: int) -> None:
            messages: list[dict[str, Any]] = [{"role": "user", "content": first}]
            for _ in range(turns):
                body = {"model": "m", "messages": messages}
                reply = (await client.post("/v1/chat/completions", json=body)).json()
                message = reply["choices"][0]["message"]
                results.setdefault(first, []).append(message["content"])
                messages = [*messages, message, {"role": "user", "content": "next"}]

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(episode, "episode A", 2)
            group.start_soon(episode, "episode B", 1)
            group.start_soon(episode, "unknown", 1)
        over = await client.post(
            "/v1/chat/completions",
            json={
                "model": "m",
                "messages": [
                    {"role": "user", "content": "episode B"},
                    {"role": "assistant", "content": "B one"},
                    {"role": "user", "content": "more"},
                ],
            },
        )
    assert results["episode A"].count("A one") == 3
    assert results["episode A"].count("A two") == 3
    assert results["episode B"] == ["B one"]
    assert results["unknown"] == ["fallback"]
    assert over.status_code == 500
    assert "episode B" in over.json()["message"]


def test_policy_must_not_be_a_string() -> None:
    with pytest.raises(TypeError):
        SGLangTestServer(policy="<think>x</think>")


# -- prompt parsing -------------------------------------------------------------------------

CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "Weather in 北京 for 2 days?"},
    {
        "role": "assistant",
        "content": "Let me check.",
        "reasoning_content": "Need the tool.",
        "tool_calls": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": {"city": "北京", "days": 2, "flags": {"a": [1, True]}},
                },
            },
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "2"}}},
        ],
    },
    {"role": "tool", "content": '{"temp": 25}'},
    {"role": "tool", "content": "second\nresult"},
]


@pytest.mark.parametrize("thinking", [True, False])
def test_parse_prompt_recovers_the_conversation(thinking: bool) -> None:
    prompt = render(CONVERSATION, TOOLS, enable_thinking=thinking)
    recovered = parse_prompt(prompt)
    assert recovered.problems == []
    assert recovered.tools == TOOLS
    assert recovered.enable_thinking is thinking
    assert recovered.ends_with_generation_prompt
    assert recovered.assistant_prefix == ""
    roles = [m["role"] for m in recovered.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool"]
    assert recovered.messages[1]["content"] == CONVERSATION[1]["content"]
    assistant = recovered.messages[2]
    assert assistant["content"] == "Let me check."
    assert assistant["reasoning_content"] == "Need the tool."
    calls = [c["function"] for c in assistant["tool_calls"]]
    assert calls == [c["function"] for c in CONVERSATION[2]["tool_calls"]]
    ids = [c["id"] for c in assistant["tool_calls"]]
    assert [m["tool_call_id"] for m in recovered.messages[3:]] == ids
    assert [m["content"] for m in recovered.messages[3:]] == ['{"temp": 25}', "second\nresult"]


def test_parse_prompt_keeps_unexpected_text() -> None:
    recovered = parse_prompt("no template at all")
    assert recovered.messages == []
    assert recovered.problems
    partial = parse_prompt(render([{"role": "user", "content": "q"}]) + "\n<think>half")
    assert partial.assistant_prefix == "\n<think>half"
    odd = parse_prompt("[gMASK]<sop><|user|>\nq<|observation|>not wrapped<|assistant|>")
    assert odd.messages[-1] == {"role": "tool", "tool_call_id": "", "content": "not wrapped"}
    assert odd.problems


# -- subprocess -----------------------------------------------------------------------------


def test_cli_subprocess_serves(tmp_path: Path) -> None:
    module = tmp_path / "my_policy_mod.py"
    module.write_text(
        textwrap.dedent(
            """
            def policy(request):
                return "<think>cli</think>\\nfrom " + request.endpoint
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentkit.testing",
            "serve",
            "--policy",
            "my_policy_mod:policy",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("READY http://127.0.0.1:"), line + (
            process.stderr.read() if process.stderr else ""
        )
        url = line.split()[1]
        assert httpx.get(f"{url}/health").status_code == 200
        reply = httpx.post(f"{url}/v1/chat/completions", json=chat_body()).json()
        assert reply["choices"][0]["message"]["content"] == "from chat"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_rejects_a_bad_policy_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agentkit.testing", "serve", "--policy", "no_colon_here"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "package.module:attribute" in result.stderr


def test_fault_specs_parse() -> None:
    assert parse_fault("hang") == Fault(FaultKind.HANG)
    assert parse_fault("http_error:3").times == 3
    always = parse_fault("server_death:always")
    assert always.times is None and always.revive_after_s is None
    for bad in ("nope", "hang:0", "hang:soon"):
        with pytest.raises(typer.BadParameter):
            parse_fault(bad)


def test_faults_apply_in_order_and_count_down() -> None:
    body = {"input_ids": [1, 2, 3], "sampling_params": {"max_new_tokens": 4}}
    with SGLangTestServer(policy=lambda request: "hi") as server:
        server.inject(Fault(FaultKind.HTTP_ERROR, times=2, status=502))
        server.inject(Fault(FaultKind.RATE_LIMITED, retry_after_s=3))
        with httpx.Client(base_url=server.base_url) as client:
            answers = [client.post("/generate", json=body) for _ in range(4)]
        server.inject(Fault(FaultKind.WRONG_SHAPE, times=None))
        with httpx.Client(base_url=server.base_url) as client:
            shaped = [client.post("/generate", json=body).json() for _ in range(2)]
            server.clear_faults()
            healthy = client.post("/generate", json=body).json()
        kinds = [f.kind for f in server.injected]
    assert [a.status_code for a in answers] == [502, 502, 429, 200]
    assert answers[2].headers["Retry-After"] == "3"
    assert all("meta_info" not in s for s in shaped) and "meta_info" in healthy
    assert (
        kinds == [FaultKind.HTTP_ERROR] * 2 + [FaultKind.RATE_LIMITED] + [FaultKind.WRONG_SHAPE] * 2
    )


def test_a_dead_server_comes_back_only_when_told_to() -> None:
    body = {"input_ids": [1, 2, 3], "sampling_params": {"max_new_tokens": 4}}
    with SGLangTestServer(policy=lambda request: "hi") as server:
        server.inject(Fault(FaultKind.SERVER_DEATH, revive_after_s=0.05))
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{server.base_url}/generate", json=body)
        for _ in range(100):  # it listens again after the delay
            try:
                revived = httpx.post(f"{server.base_url}/generate", json=body)
                break
            except httpx.ConnectError:
                time.sleep(0.02)
        assert revived.status_code == 200
        server.inject(Fault(FaultKind.SERVER_DEATH, revive_after_s=None))
        with pytest.raises(httpx.TransportError):
            httpx.post(f"{server.base_url}/generate", json=body)
        time.sleep(0.1)
        with pytest.raises(httpx.ConnectError):
            httpx.post(f"{server.base_url}/generate", json=body)
