"""The chat call's common case (one server, no stream) runs in one coroutine with the retry and
failover machinery entered only on failure: it must record every attempt, typed, as the general
path does, and raise the same chained ``ModelError``."""

from __future__ import annotations

from typing import Any

import pytest

from agentkit.messages import UserMessage
from agentkit.models import ModelError, ModelRequest, SGLangChat
from agentkit.models.failures import HTTPStatusError, ProtocolError
from agentkit.models.transport import RetryPolicy
from agentkit.models.urls import ServerPool
from agentkit.testing import Fault, FaultKind, SGLangTestServer
from agentkit.trajectory.records import AttemptCause

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(max_attempts=3, initial_backoff_s=0.0, max_backoff_s=0.0)


def _request() -> ModelRequest:
    return ModelRequest(messages=[UserMessage(content="hi")], episode_id="ep_1")


def _no_pool(self: ServerPool, *args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the one-server call went through ServerPool.call")


async def test_one_server_skips_the_pool_and_two_use_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ServerPool, "call", _no_pool)
    with SGLangTestServer(policy=["hello"] * 2) as server:
        model = SGLangChat(server.base_url, retry=FAST)
        response = await model.session(routing_key="k").generate(_request())
        await model.aclose()
        assert response.message.content == "hello"
        two = SGLangChat([server.base_url, "http://127.0.0.1:9"], retry=FAST)
        with pytest.raises(AssertionError, match=r"ServerPool\.call"):
            await two.session(routing_key="k").generate(_request())
        await two.aclose()


async def test_failed_first_attempts_are_recorded_then_the_call_succeeds() -> None:
    with SGLangTestServer(policy=["hello"]) as server:
        server.inject(Fault(FaultKind.HTTP_ERROR, status=503))
        server.inject(Fault(FaultKind.INVALID_JSON))
        model = SGLangChat(server.base_url, retry=FAST)
        try:
            response = await model.session(routing_key="k").generate(_request())
        finally:
            await model.aclose()
        url = server.base_url
    attempts = response.record.attempts
    assert [(a.number, a.ok, a.cause, a.status_code) for a in attempts] == [
        (1, False, AttemptCause.HTTP_STATUS, 503),
        (2, False, AttemptCause.PROTOCOL, None),
        (3, True, None, 200),
    ]
    assert all(a.server == url for a in attempts)
    assert attempts[0].retryable and attempts[0].backoff_s is not None
    assert response.message.content == "hello" and not response.record.failed


@pytest.mark.parametrize("max_attempts", [1, 2])
async def test_the_last_failure_raises_a_chained_model_error(max_attempts: int) -> None:
    retry = RetryPolicy(max_attempts=max_attempts, initial_backoff_s=0.0, max_backoff_s=0.0)
    with SGLangTestServer(policy=["hello"]) as server:
        server.inject(Fault(FaultKind.HTTP_ERROR, status=503))
        server.inject(Fault(FaultKind.WRONG_SHAPE))
        model = SGLangChat(server.base_url, retry=retry)
        try:
            with pytest.raises(ModelError) as caught:
                await model.session(routing_key="k").generate(_request())
        finally:
            await model.aclose()
    error = caught.value
    last = HTTPStatusError if max_attempts == 1 else ProtocolError
    assert isinstance(error.__cause__, last)
    # each attempt's failure stands alone, as in the retry loop (no chain to the one before)
    assert error.__cause__.__context__ is None
    assert error.record is not None and error.record.failed
    assert [a.number for a in error.record.attempts] == list(range(1, max_attempts + 1))
    assert error.record.error_cause is error.cause
    assert f"failed after {max_attempts} attempt(s)" in str(error)


async def test_a_rejected_request_is_not_retried() -> None:
    with SGLangTestServer(policy=["hello"]) as server:
        server.inject(Fault(FaultKind.HTTP_ERROR, status=400))
        model = SGLangChat(server.base_url, retry=FAST)
        try:
            with pytest.raises(ModelError) as caught:
                await model.session(routing_key="k").generate(_request())
        finally:
            await model.aclose()
    (attempt,) = caught.value.attempts
    assert attempt.status_code == 400 and attempt.retryable is False and attempt.backoff_s is None
    assert not caught.value.can_fail_over
