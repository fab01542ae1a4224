"""A turn cut at the token limit (finish_reason ``length``) ends the episode ``truncated`` and
its tool calls, however complete they look, are not run. Chat and token mode."""

from __future__ import annotations

from typing import Any

import pytest

from agentkit import Agent, EpisodeStatus, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from agentkit.models.base import Model
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.testing import Completion, SGLangTestServer, build_test_tokenizer
from agentkit.trajectory.recorder import MemoryRecorder
from agentkit.trajectory.records import EpisodeEnd, FailureAttribution

pytestmark = pytest.mark.anyio

RAN: list[str] = []


@tool
def delete_file(path: str) -> str:
    """Delete a file.

    Args:
        path: The file.
    """
    RAN.append(path)
    return "deleted"


def _model(mode: str, url: str) -> Model:
    return SGLangChat(url) if mode == "chat" else SGLangTokens(url, build_test_tokenizer())


@pytest.mark.parametrize("mode", ["chat", "tokens"])
async def test_a_cut_turn_runs_no_tool_and_is_truncated(mode: str) -> None:
    RAN.clear()
    # the model never stops by itself: the server ends the turn with finish_reason "length",
    # right after a call that parses as complete (its real arguments may have gone on)
    text = format_assistant("Clean up.", "", [("delete_file", {"path": "/tmp/a"})])
    script = [Completion(text, stop=None), format_assistant("Done.", "never asked", [])]
    recorder = MemoryRecorder()
    async with SGLangTestServer(policy=script) as server:
        async with Agent(
            model=_model(mode, server.base_url), tools=[delete_file], recorder=recorder
        ) as agent:
            result = await agent.run("clean up")
        answered = len(server.generation_requests())
    assert RAN == []
    assert answered == 1
    assert result.status is EpisodeStatus.TRUNCATED
    assert "token limit" in (result.error or "") and "not run" in (result.error or "")
    assert result.trajectory.calls[0].finish_reason == "length"
    assert [s for s in result.trajectory.steps if s.step_type == "tool"] == []
    end = next(i for i in recorder.items if isinstance(i, EpisodeEnd))
    assert end.status is EpisodeStatus.TRUNCATED
    assert end.failure is FailureAttribution.POLICY


@pytest.mark.parametrize("mode", ["chat", "tokens"])
async def test_a_cut_answer_without_calls_is_truncated(mode: str) -> None:
    script: list[Any] = [Completion(format_assistant("Think.", "The answer is", []), stop=None)]
    async with SGLangTestServer(policy=script) as server:
        agent: Agent[None, str] = Agent(model=_model(mode, server.base_url))
        async with agent:
            result = await agent.run("q")
    assert result.status is EpisodeStatus.TRUNCATED
    assert result.text == "The answer is"
