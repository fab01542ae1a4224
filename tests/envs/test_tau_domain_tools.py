"""The domains' tools are agentkit tools, importable one by one and grouped in a Toolset, and keep
tau-bench's contract (arguments as sent, errors as "Error: ..." observations)."""

from __future__ import annotations

import pytest

from agentkit.envs import DomainTool, load_domain
from agentkit.envs.domain import Domain, LoadedData
from agentkit.envs.domains.common import calculate, transfer_to_human_agents
from agentkit.envs.domains.demo.tools import DEMO_TOOLS, cancel_order, get_order_details
from agentkit.tool import RunContext, Tool, ToolStatus, tool
from agentkit.toolset import Toolset


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
