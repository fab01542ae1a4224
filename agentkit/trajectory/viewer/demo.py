"""A demo store for the viewer, its tests and its benchmark: real episodes, then clones.

The real episodes are runs of an ``Agent`` in token mode against agentkit's scripted SGLang test
server (GLM-4.5 completions), recorded by a ``JsonlStore``: a solved task with a reward and its
components, a tool error, a run that hit ``max_turns``, a model failure after retries and a
two-turn conversation with a later user message. ``bulk`` then appends copies of them under new
ids, tasks, groups, rewards and statuses, to make a large store quickly.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from agentkit.agent import Agent
from agentkit.dialects.glm45 import format_assistant
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.models.transport import RetryPolicy
from agentkit.testing import DialoguePolicy, SGLangTestServer, build_test_tokenizer
from agentkit.tool import ToolError, tool
from agentkit.trajectory.records import (
    EpisodeEnd,
    EpisodeStart,
    EpisodeStatus,
    FailureAttribution,
    RunManifest,
    Trajectory,
)
from agentkit.trajectory.store import JsonlStore, read_jsonl


@tool
async def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up an order.

    Args:
        order_id: The order number, like "#W1001".
    """
    await anyio.lowlevel.checkpoint()
    if order_id == "#W0000":
        raise ToolError(f"order {order_id} not found")
    return {"order_id": order_id, "status": "shipped", "items": ["kettle", "mug"]}


def _turn(reasoning: str, content: str = "", *calls: tuple[str, dict[str, Any]]) -> str:
    return format_assistant(reasoning, content, list(calls), thinking=True)


SOLVED = "Where is my order #W1001?"
TOOL_ERROR = "Where is order #W0000?"
LOOPING = "Check order #W1002 again and again."
TWO_TURNS = "Is #W1003 shipped?"
FAILING = "Status of #W1004?"

SCRIPTS = {
    SOLVED: [
        _turn("Look the order up.", "", ("lookup_order", {"order_id": "#W1001"})),
        _turn("It shipped.", "Your order #W1001 has shipped: a kettle and a mug."),
    ],
    TOOL_ERROR: [
        _turn("Look it up.", "", ("lookup_order", {"order_id": "#W0000"})),
        _turn("Not found; say so.", "I could not find order #W0000."),
    ],
    LOOPING: [
        _turn("Check.", "", ("lookup_order", {"order_id": "#W1002"})),
        _turn("Check once more.", "", ("lookup_order", {"order_id": "#W1002"})),
    ],
    TWO_TURNS: [
        _turn("Look it up.", "", ("lookup_order", {"order_id": "#W1003"})),
        _turn("Shipped.", "Yes, #W1003 has shipped."),
        _turn("Answer the follow-up.", "It holds a kettle and a mug."),
    ],
}


async def record_demo_episodes(path: Path) -> None:
    """Run the real demo episodes into the store at ``path`` (appending)."""
    tokenizer = build_test_tokenizer()
    manifest = RunManifest(model="default", mode="tokens", metadata={"source": "viewer demo"})
    with JsonlStore(path, manifest=manifest) as store:
        async with SGLangTestServer(policy=DialoguePolicy(SCRIPTS)) as server:
            agent: Agent[None, str] = Agent(
                model=SGLangTokens(server.base_url, tokenizer),
                instructions="You are the bookshop's support agent.",
                tools=[lookup_order],
                max_turns=2,
                recorder=store,
            )
            async with agent:
                await _scored(agent, SOLVED, "retail-1", 1.0, {"correct": 1.0, "polite": 1.0})
                await _scored(agent, TOOL_ERROR, "retail-2", 0.0, {"correct": 0.0})
                await agent.run(LOOPING, task_id="retail-3", group_id="g-retail-3")
                conv = agent.conversation(task_id="retail-4", group_id="g-retail-4")
                await conv.send(TWO_TURNS)
                await conv.send("What is in it?")
                await conv.finish(reward=0.5, reward_components={"correct": 0.5})
            server.fail_next(3, status=503)
            failing: Agent[None, str] = Agent(
                model=SGLangTokens(
                    server.base_url, tokenizer, retry=RetryPolicy(2, initial_backoff_s=0.0)
                ),
                tools=[lookup_order],
                recorder=store,
            )
            async with failing:
                await failing.run(FAILING, task_id="retail-5", group_id="g-retail-5")


async def _scored(
    agent: Agent[None, str], prompt: str, task: str, reward: float, parts: dict[str, float]
) -> None:
    conv = agent.conversation(task_id=task, group_id=f"g-{task}", sample_index=0)
    result = await conv.send(prompt)
    await conv.finish(
        status=result.status, reward=reward, reward_components=parts, output=result.output
    )


_STATUSES = [
    (EpisodeStatus.COMPLETED, None),
    (EpisodeStatus.COMPLETED, None),
    (EpisodeStatus.COMPLETED, None),
    (EpisodeStatus.MAX_TURNS, FailureAttribution.POLICY),
    (EpisodeStatus.MODEL_ERROR, FailureAttribution.INFRASTRUCTURE),
]


def append_clones(path: Path, total: int, *, seed: int = 0) -> None:
    """Append copies of the store's episodes until it holds ``total`` episodes."""
    templates = [t for t in read_jsonl(path).episodes if t.finished]
    have = len(read_jsonl(path).episodes)
    rng = random.Random(seed)
    with JsonlStore(path, fsync="never") as store:
        for n in range(have, total):
            template = templates[n % len(templates)]
            for record in _clone(template, n, rng):
                store.write(record)


def _clone(template: Trajectory, n: int, rng: random.Random) -> list[Any]:
    episode_id = f"ep_clone{n:07d}"
    task = f"retail-{n % 200}"
    start: EpisodeStart = template.start.model_copy(
        update={
            "episode_id": episode_id,
            "task_id": task,
            "group_id": f"g-{task}",
            "sample_index": (n // 200) % 8,
        }
    )
    calls = [c.model_copy(update={"episode_id": episode_id}) for c in template.calls]
    steps = [s.model_copy(update={"episode_id": episode_id}) for s in template.steps]
    status, failure = _STATUSES[n % len(_STATUSES)]
    reward = round(rng.random(), 3) if status is EpisodeStatus.COMPLETED else 0.0
    assert template.end is not None
    end: EpisodeEnd = template.end.model_copy(
        update={
            "episode_id": episode_id,
            "status": status,
            "failure": failure,
            "reward": reward,
            "reward_components": {"correct": reward, "format": 1.0},
            "termination_reason": status.value,
            "error": None if failure is None else f"demo {status.value}",
        }
    )
    return [start, *calls, *steps, end]


async def write_demo_store(path: str | Path, *, total: int = 0) -> Path:
    """A fresh demo store at ``path``: the real episodes, then clones up to ``total``."""
    target = Path(path)
    await anyio.to_thread.run_sync(lambda: target.unlink(missing_ok=True))
    await record_demo_episodes(target)
    if total:
        await anyio.to_thread.run_sync(append_clones, target, total)
    return target
