"""A refund that waits for a person: pause for approval, decide later (even in another process).

python examples/approvals/run.py                     # pause, then approve, in one go
python examples/approvals/run.py pause               # run until the refund waits; write state.json
python examples/approvals/run.py resume --deny "over the limit"   # later, from any process
python examples/approvals/run.py resume --amount 100              # approve with an edit

Refunds above 100 dollars need approval (a predicate over the arguments); hooks log every
call and its outcome; a price table gives the run's cost. The episode goes to ``approvals.jsonl`` as one
episode across the pause. ``--model-url URL`` uses GLM-4.5 on SGLang instead of the scripted
test server (whose policy reads the conversation, so every process can start its own).
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

import anyio

from agentkit import Agent, RunContext, ToolCall, ToolOutcome, tool
from agentkit.approvals import ApprovalDecision
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from agentkit.pricing import ModelPrice
from agentkit.run_state import RunState
from agentkit.testing import PolicyRequest, SGLangTestServer
from agentkit.trajectory.store import JsonlStore


@tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Look an order up.

    Args:
        order_id: The order's id.
    """
    return {"order_id": order_id, "total": 250, "status": "delivered damaged"}


@tool(requires_approval=lambda args: float(args.get("amount", 0)) > 100)
def refund(order_id: str, amount: float) -> str:
    """Refund (part of) an order.

    Args:
        order_id: The order's id.
        amount: Dollars to refund.
    """
    return f"refunded {amount:.2f} dollars on {order_id}"


def log_call(call: ToolCall, ctx: RunContext[Any]) -> None:
    print(f"  -> {call.name}({call.arguments})")


def log_result(call: ToolCall, outcome: ToolOutcome, ctx: RunContext[Any]) -> None:
    print(f"  <- {call.name}: {outcome.status.value}: {outcome.output[:80]}")


def policy(request: PolicyRequest) -> str:
    """The scripted model: look the order up, refund it, then report what happened."""
    last = request.last_message or {}
    if last.get("role") == "tool" and last.get("name") == "refund":
        return format_assistant("Report it.", f"Done: {last.get('content')}", [])
    if last.get("role") == "tool":
        return format_assistant(
            "Damaged: refund in full.", "", [("refund", {"order_id": "A17", "amount": 250})]
        )
    return format_assistant("Find the order.", "", [("lookup_order", {"order_id": "A17"})])


def make_agent(url: str, store: JsonlStore) -> Agent[None, str]:
    return Agent(
        model=SGLangChat(url),
        instructions="You handle refunds.",
        tools=[lookup_order, refund],
        before_tool_call=log_call,
        after_tool_call=log_result,
        recorder=store,
        prices=ModelPrice(input_per_mtok=0.6, cached_input_per_mtok=0.11, output_per_mtok=2.2),
    )


def decisions(state: RunState, deny: str | None, amount: float | None) -> list[ApprovalDecision]:
    chosen = []
    for pending in state.pending:
        print(f"pending: {pending.tool}({pending.arguments}) because {pending.reason}")
        if deny is not None:
            chosen.append(ApprovalDecision.deny(pending.id, deny))
        elif amount is not None:
            chosen.append(
                ApprovalDecision.edit(pending.id, {**pending.arguments, "amount": amount})
            )
        else:
            chosen.append(ApprovalDecision.approve(pending.id))
    return chosen


async def main(args: argparse.Namespace) -> None:
    state_file = anyio.Path(args.state)
    async with contextlib.AsyncExitStack() as stack:
        url = args.model_url
        if url is None:
            url = (await stack.enter_async_context(SGLangTestServer(policy=policy))).base_url
        store = stack.enter_context(JsonlStore(args.store))
        agent = await stack.enter_async_context(make_agent(url, store))
        if args.step in ("pause", "both"):
            result = await agent.run("Order A17 arrived broken; please refund it.")
            if result.state is None:
                print(f"{result.status.value}: {result.text}")
                return
            await state_file.write_text(result.state.model_dump_json())
            print(f"paused ({result.status.value}); state in {state_file}")
        if args.step in ("resume", "both"):
            state = RunState.model_validate_json(await state_file.read_text())
            chosen = decisions(state, args.deny, args.amount)
            result = await agent.resume(state, chosen)
            print(f"{result.status.value}: {result.text}")
            print(f"usage: {result.usage.model_dump()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", nargs="?", choices=["both", "pause", "resume"], default="both")
    parser.add_argument("--state", default="state.json")
    parser.add_argument("--store", default="approvals.jsonl")
    parser.add_argument("--deny", default=None, help="deny with this message")
    parser.add_argument("--amount", type=float, default=None, help="approve with this amount")
    parser.add_argument("--model-url", default=None)
    anyio.run(main, parser.parse_args())
