"""The domains' tools are agentkit tools, importable one by one and grouped in a Toolset, and keep
tau-bench's contract (arguments as sent, errors as "Error: ..." observations)."""

from __future__ import annotations

from typing import Any

import pytest

from agentkit.envs import DomainTool, load_domain
from agentkit.envs.domain import Domain, LoadedData
from agentkit.envs.domains.common import calculate, transfer_to_human_agents
from agentkit.envs.domains.demo.tools import DEMO_TOOLS, cancel_order, get_order_details
from agentkit.envs.registry import load_tau2_domain
from agentkit.models import SGLangChat
from agentkit.tool import DEFAULT_MAX_OUTPUT_CHARS, RunContext, Tool, ToolStatus, tool
from agentkit.toolset import Toolset
from tests.shared import shared_file


def test_a_domain_tool_is_an_agentkit_tool_in_the_domains_toolset() -> None:
    domain = load_domain("demo")
    assert isinstance(domain.tools(), Toolset)
    assert domain.tools() is DEMO_TOOLS
    assert isinstance(cancel_order, Tool) and isinstance(cancel_order, DomainTool)
    assert DEMO_TOOLS.get("cancel_order") is cancel_order
    assert cancel_order.mutates and not cancel_order.terminates
    assert transfer_to_human_agents.terminates
    assert domain.terminate_tools == {"transfer_to_human_agents"}
    assert cancel_order.schema()["function"]["parameters"]["required"] == ["order_id", "reason"]


@pytest.mark.anyio
async def test_an_imported_tool_runs_on_an_episode_and_logs_the_action() -> None:
    domain = load_domain("demo")
    state = domain.new_episode()
    order_id = next(iter(state.data["orders"]))
    outcome = await get_order_details.call({"order_id": order_id}, RunContext(deps=state))
    assert outcome.status is ToolStatus.OK
    assert order_id in outcome.output
    assert [a.name for a in state.actions] == ["get_order_details"]
    missing = await get_order_details.call({"order_id": "#none"}, RunContext(deps=state))
    assert missing.status is ToolStatus.ERROR and missing.output == "Error: order not found"


@pytest.mark.anyio
async def test_arguments_reach_the_function_as_sent() -> None:
    state = load_domain("demo").new_episode()
    # no validation: Python's own error, in tau-bench's wording, is the observation
    outcome = await cancel_order.call({"order_id": "#D5000"}, RunContext(deps=state))
    assert outcome.status is ToolStatus.ERROR
    assert outcome.output == (
        "Error: CancelOrder.invoke() missing 1 required positional argument: 'reason'"
    )
    assert calculate.invoke({}, {"expression": "2 * 3.5"}) == "7.0"
    # checked here too, not only on tau-bench's shared retail data
    invalid = calculate.invoke({}, {"expression": "__import__('os')"})
    assert invalid == "Error: invalid characters in expression"
    assert state.step("no_such_tool", {}) == "Unknown action no_such_tool"


@pytest.mark.anyio
async def test_a_renamed_tool_still_logs_tau_benchs_name() -> None:
    state = load_domain("demo").new_episode()
    renamed = DEMO_TOOLS.prefix("shop_").get("shop_get_order_details")
    order_id = next(iter(state.data["orders"]))
    outcome = await renamed.call({"order_id": order_id}, RunContext(deps=state))
    assert outcome.status is ToolStatus.OK
    assert [a.name for a in state.actions] == ["get_order_details"]


def test_a_domain_refuses_a_tool_that_is_not_a_domain_tool() -> None:
    @tool
    def ping() -> str:
        """Answer pong."""
        return "pong"

    with pytest.raises(TypeError, match="not a DomainTool"):
        Domain(name="x", policy="", toolset=Toolset([ping]), data=LoadedData({}))


@pytest.mark.anyio
async def test_each_benchmark_sets_its_per_turn_call_limit_in_one_place() -> None:
    model = SGLangChat("http://127.0.0.1:9")  # never called
    tau = load_domain("demo")
    agent = tau.agent(model, max_turns=3)
    assert agent.max_tool_calls_per_turn == tau.max_tool_calls_per_turn == 1
    assert (agent.instructions, agent.name, agent.max_turns) == (tau.policy, "tau-demo", 3)
    assert [t.name for t in agent.tools] == list(DEMO_TOOLS.names)
    assert tau.agent(model, max_tool_calls_per_turn=None).max_tool_calls_per_turn is None
    await model.aclose()


@pytest.mark.anyio
async def test_tau2_runs_every_call_of_a_turn() -> None:
    tau2 = load_tau2_domain("telecom", shared_file("tau2", "telecom"))
    model = SGLangChat("http://127.0.0.1:9")  # never called
    agent2 = tau2.agent(model)
    assert tau2.max_tool_calls_per_turn is None  # tau2 runs every call of a turn
    assert agent2.max_tool_calls_per_turn is None and agent2.name == "tau2-telecom"
    assert isinstance(tau2.tools(), Toolset) and isinstance(tau2.user_tools(), Toolset)
    await model.aclose()


def _one_tool_domain(function: Any, name: str = "probe") -> Domain:
    probe = DomainTool(name, "A probe.", {"type": "object", "properties": {}}, function)
    return Domain(
        name="probe",
        policy="",
        toolset=Toolset([probe, transfer_to_human_agents]),
        data=LoadedData.from_objects({"rows": []}),
    )


@pytest.mark.anyio
async def test_a_domain_tool_wants_an_episode_as_its_deps() -> None:
    outcome = await get_order_details.call({"order_id": "#D5000"}, RunContext(deps=None))
    assert outcome.status is ToolStatus.ERROR
    assert outcome.output == "Error: get_order_details needs EpisodeState deps, got NoneType"


@pytest.mark.anyio
async def test_a_long_observation_reaches_the_model_whole_and_no_call_is_timed_out() -> None:
    long_text = "x" * (DEFAULT_MAX_OUTPUT_CHARS * 3)
    domain = _one_tool_domain(lambda data: long_text)
    probe = domain.by_name["probe"]
    assert probe.timeout is None
    outcome = await probe.call({}, RunContext(deps=domain.new_episode()))
    assert outcome.status is ToolStatus.OK and not outcome.truncated
    assert outcome.output == long_text


@pytest.mark.anyio
async def test_a_function_that_returns_no_string_is_an_error_observation() -> None:
    domain = _one_tool_domain(lambda data: None)
    state = domain.new_episode()
    assert state.step("probe", {}) == "Error: tool probe returned no result"
    outcome = await domain.by_name["probe"].call({}, RunContext(deps=state))
    assert outcome.status is ToolStatus.ERROR
    assert outcome.output == "Error: tool probe returned no result"


@pytest.mark.anyio
async def test_nothing_runs_after_the_transfer_to_a_human() -> None:
    ran: list[int] = []

    def count(data: dict[str, Any]) -> str:
        ran.append(1)
        return str(len(ran))

    domain = _one_tool_domain(count)
    state = domain.new_episode()
    assert state.step("probe", {}) == "1"
    assert state.step("transfer_to_human_agents", {"summary": "s"}) == "Transfer successful"
    assert state.terminated
    refused = "Error: the conversation was transferred; probe was not run"
    assert state.step("probe", {}) == refused
    outcome = await domain.by_name["probe"].call({}, RunContext(deps=state))
    assert outcome.status is ToolStatus.ERROR and outcome.output == refused
    unknown = state.step("no_such_tool", {})
    assert unknown == "Error: the conversation was transferred; no_such_tool was not run"
    assert ran == [1]
    assert [a.name for a in state.actions] == ["probe", "transfer_to_human_agents"]
