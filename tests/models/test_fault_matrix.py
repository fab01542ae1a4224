"""The fault matrix: every injected server fault x chat/token mode x stream/not x once/always.

Each cell runs one agent episode against the test server with the fault injected and checks:
the status (a fault that happens once is recovered and the run completes; one that never stops
ends ``model_error``, never ``completed``), the recorded attempts (every failed one with its
typed cause), a valid JSONL store read back, and that nothing escaped ``agent.run``. A malformed
tool call is the model's mistake, not the server's: the run goes on and completes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.events import ModelRetryEvent, RunEvent
from agentkit.models import SGLangChat
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.models.transport import RetryPolicy
from agentkit.testing import Fault, FaultKind, PolicyRequest, SGLangTestServer, build_test_tokenizer
from agentkit.tokenizer import Tokenizer
from agentkit.trajectory.exports import exclusion_reason
from agentkit.trajectory.records import AttemptCause, EpisodeStatus, FailureAttribution
from agentkit.trajectory.store import JsonlStore, read_jsonl

pytestmark = pytest.mark.anyio

MAX_ATTEMPTS = 3
HANG_TIMEOUT_S = 0.3
C = AttemptCause


@tool
def add(a: int, b: int) -> int:
    """Add two numbers.

    Args:
        a: first
        b: second
    """
    return a + b


def policy(request: PolicyRequest) -> str:
    """Call ``add`` once, then answer (stateless, so a retried request gets the same answer)."""
    if request.assistant_turns == 0:
        return format_assistant("add them", "", [("add", {"a": 17, "b": 25})])
    return format_assistant("done", "The sum is 42.", [])


# (fault, stream) -> the cause its failed attempts are recorded with
def expected_cause(kind: FaultKind, stream: bool) -> AttemptCause:
    table = {
        FaultKind.HTTP_ERROR: C.HTTP_STATUS,
        FaultKind.RATE_LIMITED: C.HTTP_STATUS,
        FaultKind.CONNECTION_RESET: C.CONNECTION,
        FaultKind.HANG: C.TIMEOUT,
        FaultKind.INVALID_JSON: C.PROTOCOL,
        FaultKind.WRONG_SHAPE: C.PROTOCOL,
        FaultKind.TRUNCATED_STREAM: C.INCOMPLETE_STREAM if stream else C.CONNECTION,
        FaultKind.ERROR_EVENT: C.SERVER_ERROR_EVENT if stream else C.PROTOCOL,
        FaultKind.SERVER_DEATH: C.CONNECTION,
    }
    return table[kind]


SERVER_FAULTS = [k for k in FaultKind if k is not FaultKind.MALFORMED_TOOL_CALL]
MID_STREAM = {
    FaultKind.CONNECTION_RESET,
    FaultKind.HANG,
    FaultKind.INVALID_JSON,
    FaultKind.TRUNCATED_STREAM,
    FaultKind.ERROR_EVENT,
}


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return build_test_tokenizer()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[SGLangTestServer]:
    with SGLangTestServer(policy=policy) as server:
        yield server


def make_fault(kind: FaultKind, always: bool) -> Fault:
    return Fault(
        kind,
        times=None if always else 1,
        retry_after_s=1.0,
        hang_s=5.0,
        revive_after_s=None if always else 0.02,
    )


async def run_cell(
    server: SGLangTestServer,
    tokenizer: Tokenizer,
    store_path: Path,
    *,
    mode: str,
    stream: bool,
    kind: FaultKind,
) -> tuple[Any, list[RunEvent]]:
    retry = RetryPolicy(
        max_attempts=MAX_ATTEMPTS,
        # a dead server needs a moment to listen again; the other faults need no wait
        initial_backoff_s=0.1 if kind is FaultKind.SERVER_DEATH else 0.01,
        max_backoff_s=0.2,
        max_retry_after_s=0.1,
        timeout_s=HANG_TIMEOUT_S if kind is FaultKind.HANG else 30.0,
    )
    model: Any = (
        SGLangChat(server.base_url, retry=retry)
        if mode == "chat"
        else SGLangTokens(server.base_url, tokenizer, retry=retry)
    )
    events: list[RunEvent] = []

    async def collect(event: RunEvent) -> None:
        events.append(event)

    with JsonlStore(store_path) as store:
        async with Agent(model=model, tools=[add], max_turns=4, recorder=store) as agent:
            result = await agent.run("17 + 25?", event_handler=collect if stream else None)
    return result, events


def check_store(store_path: Path, result: Any) -> None:
    contents = read_jsonl(store_path)
    assert not contents.bad_lines and contents.orphans == 0
    assert len(contents.episodes) == 1
    stored = contents.episodes[0]
    assert stored.end is not None and stored.end.status == result.status
    assert [c.model_dump() for c in stored.calls] == [
        c.model_dump() for c in result.trajectory.calls
    ]
    if result.status is EpisodeStatus.MODEL_ERROR:
        # a server failure is never training data (nor a policy failure with reward 0)
        assert stored.end.failure is FailureAttribution.INFRASTRUCTURE
        assert exclusion_reason(stored) is not None


@pytest.mark.parametrize("always", [False, True], ids=["once", "always"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", ["chat", "tokens"])
@pytest.mark.parametrize("kind", SERVER_FAULTS, ids=[k.value for k in SERVER_FAULTS])
async def test_server_fault(
    kind: FaultKind,
    mode: str,
    stream: bool,
    always: bool,
    shared_server: SGLangTestServer,
    tokenizer: Tokenizer,
    tmp_path: Path,
) -> None:
    own = kind is FaultKind.SERVER_DEATH  # a dead server is nobody else's
    server = SGLangTestServer(policy=policy) if own else shared_server
    if own:
        server.start()
    server.clear_faults()
    server.inject(make_fault(kind, always))
    store_path = tmp_path / "store.jsonl"
    try:
        result, events = await run_cell(
            server, tokenizer, store_path, mode=mode, stream=stream, kind=kind
        )
    finally:
        server.clear_faults()
        if own:
            server.stop()
    check_store(store_path, result)
    cause = expected_cause(kind, stream)
    calls = result.trajectory.calls
    first = calls[0]
    failed_attempts = [a for a in first.attempts if not a.ok]
    assert failed_attempts, "the fault left no failed attempt in the record"
    assert failed_attempts[0].cause is cause, failed_attempts[0]
    assert all(a.cause is not None and a.error for a in failed_attempts)
    if kind is FaultKind.RATE_LIMITED:
        assert failed_attempts[0].status_code == 429
        assert failed_attempts[0].retry_after_s == 1.0
        if failed_attempts[0].backoff_s is not None:
            assert failed_attempts[0].backoff_s >= 0.1  # the capped Retry-After, not the backoff
    if always:
        assert result.status is EpisodeStatus.MODEL_ERROR, result.error
        assert len(calls) == 1 and first.failed and first.error and first.error_cause is not None
        assert len(first.attempts) == MAX_ATTEMPTS
        assert not any(a.ok for a in first.attempts)
        assert all(a.cause is cause for a in first.attempts if kind is not FaultKind.SERVER_DEATH)
    else:
        assert result.status is EpisodeStatus.COMPLETED, result.error
        assert result.output == "The sum is 42."
        assert first.attempts[-1].ok and not first.failed
        assert not any(c.failed for c in calls)
    if stream:
        retries = [e for e in events if isinstance(e, ModelRetryEvent)]
        assert len(retries) == len(failed_attempts)
        assert [e.will_retry for e in retries][-1] is (not always)
        if kind in MID_STREAM:
            assert retries[0].discard_partial and retries[0].attempt.partial


@pytest.mark.parametrize("always", [False, True], ids=["once", "always"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("mode", ["chat", "tokens"])
async def test_malformed_tool_call_is_the_models_mistake(
    mode: str,
    stream: bool,
    always: bool,
    shared_server: SGLangTestServer,
    tokenizer: Tokenizer,
    tmp_path: Path,
) -> None:
    shared_server.clear_faults()
    shared_server.inject(make_fault(FaultKind.MALFORMED_TOOL_CALL, always))
    store_path = tmp_path / "store.jsonl"
    try:
        result, _ = await run_cell(
            shared_server,
            tokenizer,
            store_path,
            mode=mode,
            stream=stream,
            kind=FaultKind.MALFORMED_TOOL_CALL,
        )
    finally:
        shared_server.clear_faults()
    check_store(store_path, result)
    # the broken call was answered with its parse error, not run, and the episode went on
    assert result.status is EpisodeStatus.COMPLETED, result.error
    assert result.output == "The sum is 42."
    first = result.trajectory.calls[0]
    assert all(a.ok for a in first.attempts)  # a valid reply: nothing to retry
    assert not any(step.status == "ok" for step in result.trajectory.steps if step.call)
    if mode == "chat":
        (call,) = first.tool_calls
        assert call.parse_error and "JSON" in call.parse_error
        assert call.raw_arguments is not None and "'a'" in call.raw_arguments
    else:
        assert any(p.startswith("unclosed_tool_call") for p in first.problems)
