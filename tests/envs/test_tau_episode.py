"""Episodes end to end through the planner loop with scripted agents and users."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent
from agentkit.envs import load_domain
from agentkit.envs.episode import Ending, run_episode
from agentkit.envs.scripted import GoldPolicy, gold_script, instruction_user, tool_call_text
from agentkit.envs.user import STOP, ModelUser, ScriptedUser
from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer
from agentkit.trajectory.recorder import MemoryRecorder
from agentkit.trajectory.records import EnvStepRecord, EpisodeEnd
from tests.shared import shared_file


@pytest.mark.anyio
async def test_right_actions_score_one_and_a_wrong_one_scores_zero() -> None:
    domain = load_domain("demo")
    task = domain.tasks[0]  # cancel a pending order, reason "no longer needed"
    right = gold_script(domain, task)
    wrong = [s.replace("no longer needed", "ordered by mistake") for s in right]
    assert wrong != right
    rewards = []
    for script in (right, wrong):
        async with SGLangTestServer(policy=script) as server:
            agent: Agent[Any, Any] = domain.agent(SGLangChat(server.base_url))
            user = ScriptedUser(["Hi, please cancel my order #D5000, I no longer need it."])
            result = await run_episode(agent, domain, 0, user)
            assert result.ending is Ending.USER_STOP
            assert result.reward is not None
            rewards.append(result.reward.reward)
            assert result.reward.r_actions is (script is right)
            await agent.aclose()
    assert rewards == [1.0, 0.0]


@pytest.mark.anyio
async def test_trajectory_holds_user_and_agent_steps_and_reward() -> None:
    domain = load_domain("demo")
    index = next(i for i, t in enumerate(domain.tasks) if t.outputs)
    task = domain.tasks[index]
    recorder = MemoryRecorder()
    async with SGLangTestServer(policy=GoldPolicy(domain)) as server:
        agent: Agent[Any, Any] = domain.agent(SGLangChat(server.base_url))
        result = await run_episode(agent, domain, index, instruction_user(task), recorder=recorder)
        await agent.aclose()
    assert result.success
    assert result.reward is not None and result.reward.outputs == dict.fromkeys(task.outputs, True)
    end = [r for r in recorder.items if isinstance(r, EpisodeEnd)]
    assert len(end) == 1 and end[0].reward == 1.0
    assert end[0].reward_components["r_actions"] is True
    kinds = [r.step_type for r in recorder.items if isinstance(r, EnvStepRecord)]
    assert kinds[0] == "user" and "agent_reply" in kinds and kinds[-1] == "user"
    assert kinds.count("tool") == len(task.actions)


@pytest.mark.anyio
async def test_saying_the_wrong_output_scores_zero() -> None:
    domain = load_domain("demo")
    index = next(i for i, t in enumerate(domain.tasks) if t.outputs)
    task = domain.tasks[index]
    script = [*gold_script(domain, task)[:-1], "<think>x</think>\nThe total is unknown."]
    async with SGLangTestServer(policy=script) as server:
        agent: Agent[Any, Any] = domain.agent(SGLangChat(server.base_url))
        result = await run_episode(agent, domain, index, ScriptedUser(["Hi"]))
        await agent.aclose()
    assert result.reward is not None
    assert result.reward.r_actions is True and result.reward.r_outputs == 0.0
    assert result.reward.reward == 0.0


@pytest.mark.anyio
async def test_transfer_ends_the_episode_and_blocks_later_writes() -> None:
    domain = load_domain("demo")
    task = domain.tasks[0]
    cancel = task.actions[-1]
    script = [
        tool_call_text("transfer_to_human_agents", {"summary": "wants a human"}),
        tool_call_text(cancel.name, cancel.kwargs),
        "<think>x</think>\nTransferred.",
    ]
    async with SGLangTestServer(policy=script) as server:
        agent: Agent[Any, Any] = domain.agent(SGLangChat(server.base_url))
        user = ScriptedUser(["I want a human", "hello?"])
        result = await run_episode(agent, domain, 0, user)
        await agent.aclose()
    assert result.ending is Ending.TRANSFER
    assert user.heard == []  # the transfer ended the talk before any reply reached the user
    assert result.reward is not None and result.reward.r_actions is False  # the cancel never ran


@pytest.mark.anyio
async def test_step_cap_gives_zero_even_with_the_right_database() -> None:
    domain = load_domain("demo")
    task = domain.tasks[0]
    async with SGLangTestServer(policy=gold_script(domain, task)) as server:
        agent: Agent[Any, Any] = domain.agent(SGLangChat(server.base_url))
        result = await run_episode(agent, domain, 0, ScriptedUser(["hi"]), max_steps=2)
        await agent.aclose()
    assert result.ending in (Ending.MAX_STEPS,)
    assert result.reward is not None and result.reward.reward == 0.0


@pytest.mark.anyio
async def test_model_user_plays_the_customer_and_model_failure_is_infrastructure() -> None:
    domain = load_domain("demo")
    task = domain.tasks[0]

    def user_policy(request: object) -> str:
        return "Please cancel #D5000." if getattr(request, "assistant_turns", 0) == 0 else STOP

    async with (
        SGLangTestServer(policy=user_policy) as user_server,
        SGLangTestServer(policy=gold_script(domain, task)) as agent_server,
    ):
        user_model = SGLangChat(user_server.base_url)
        user = ModelUser(user_model)
        assert await user.reset(task.instruction) == "Please cancel #D5000."
        prompt = user_server.generation_requests()[0]
        sent = json.dumps(prompt.request)
        assert "###STOP###" in sent and task.instruction[:40] in sent
        agent: Agent[Any, Any] = domain.agent(SGLangChat(agent_server.base_url))
        result = await run_episode(agent, domain, 0, ModelUser(user_model))
        assert result.success and result.ending is Ending.USER_STOP
        await agent.aclose()
        await user_model.aclose()
    dead = ModelUser(SGLangChat("http://127.0.0.1:9"))
    agent = domain.agent(SGLangChat("http://127.0.0.1:9"))
    failed = await run_episode(agent, domain, 0, dead)
    await agent.aclose()
    assert failed.infrastructure_failure and failed.reward is None


@pytest.mark.anyio
async def test_retail_task_gold_agent_scores_one() -> None:
    domain = load_domain("retail", shared_file("taubench", "retail"))
    index = 5
    task = domain.tasks[index]
    async with SGLangTestServer(policy=GoldPolicy(domain)) as server:
        agent: Agent[Any, Any] = domain.agent(SGLangChat(server.base_url))
        result = await run_episode(agent, domain, index, instruction_user(task))
        await agent.aclose()
    assert result.success, result


def test_no_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs --data-dir"):
        load_domain("retail")
    with pytest.raises(ValueError, match="lacks"):
        load_domain("airline", tmp_path)


@pytest.mark.anyio
async def test_agent_turn_limit_per_message_does_not_cut_the_episode_short() -> None:
    domain = load_domain("demo")
    task = domain.tasks[0]  # three gold actions and a closing message: four model calls
    async with SGLangTestServer(policy=gold_script(domain, task)) as server:
        agent: Agent[Any, Any] = domain.agent(
            SGLangChat(server.base_url),
            max_turns=2,
        )
        result = await run_episode(agent, domain, 0, ScriptedUser(["hi"]))
        await agent.aclose()
    assert result.model_calls == 4
    assert result.success


@pytest.mark.anyio
async def test_only_the_first_tool_call_of_a_turn_runs() -> None:
    domain = load_domain("demo")
    task = domain.tasks[0]
    cancel = task.actions[-1]
    other = domain.tasks[1].actions[-1]  # cancels another customer's order
    both = (
        tool_call_text(cancel.name, cancel.kwargs) + "\n" + tool_call_text(other.name, other.kwargs)
    )
    script = [both, "<think>x</think>\nDone."]
    assert domain.max_tool_calls_per_turn == 1  # the tau-bench setting Domain.agent applies
    for one_call in (True, False):
        async with SGLangTestServer(policy=script) as server:
            limit = {} if one_call else {"max_tool_calls_per_turn": None}
            agent: Agent[Any, Any] = domain.agent(SGLangChat(server.base_url), **limit)
            if one_call:
                result = await run_episode(agent, domain, 0, ScriptedUser(["hi"]))
            else:  # running every call is allowed, and said to make the scores incomparable
                with pytest.warns(UserWarning, match="not comparable"):
                    result = await run_episode(agent, domain, 0, ScriptedUser(["hi"]))
            await agent.aclose()
        assert result.reward is not None
        # tau-bench semantics: the second cancel never happens, so the database is the gold one
        assert result.reward.r_actions is one_call
