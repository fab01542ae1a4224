"""The slime plug-in against slime's own code: its custom generate function returns slime
``Sample``s (slime's class, loaded from its source) built from agentkit episodes run against the
test server; slime's train-data conversion takes them; the ``.pt`` writer round-trips through
slime's debug-rollout loader."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent
from agentkit.integrations.slime import generate as slime_generate
from agentkit.integrations.slime.pt import store_to_debug_rollout, write_debug_rollout
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.rollout import rollout
from agentkit.testing import SGLangTestServer, build_test_tokenizer, load_test_tokenizer
from agentkit.trajectory.records import EpisodeStatus
from tests import rollout_fixture as fx
from tests.trainer_sources import import_or_skip, slime_source, stub_gpu_only

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def slime(tmp_path_factory: pytest.TempPathFactory) -> Any:
    slime_source(tmp_path_factory.mktemp("slime"))
    return import_or_skip("slime.utils.types", "slime's Sample does not import")


@pytest.fixture
async def server() -> AsyncIterator[SGLangTestServer]:
    async with SGLangTestServer(policy=fx.policy) as srv:
        yield srv
    await slime_generate_close()


async def slime_generate_close() -> None:
    while slime_generate._AGENTS:
        _, agent = slime_generate._AGENTS.popitem()
        await agent.aclose()


def make_agent(base_url: str) -> Agent[Any, Any]:
    """The factory slime's generate function is pointed at (``AGENTKIT_SLIME_AGENT``)."""
    return Agent(
        model=SGLangTokens(base_url, build_test_tokenizer()),
        instructions="Answer with the help of lookup.",
        tools=[fx.lookup],
        max_turns=4,
    )


def make_short_agent(base_url: str) -> Agent[Any, Any]:
    """Runs out of turns after the tool call: slime calls that ``completed``."""
    agent = make_agent(base_url)
    agent.max_turns = 1
    return agent


def _args(server: SGLangTestServer, agent: str = "make_agent", reward: bool = True) -> Namespace:
    host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
    return Namespace(
        sglang_router_ip=host,
        sglang_router_port=int(port),
        agentkit_agent=f"tests.integrations.test_slime_generate:{agent}",
        agentkit_reward="tests.rollout_fixture:reward" if reward else None,
    )


def _server_tokens(server: SGLangTestServer) -> list[tuple[list[int], list[int], list[float]]]:
    out = []
    for rec in server.generation_requests():
        if rec.path == "/generate" and rec.status == 200:
            meta = rec.response["meta_info"]
            out.append(
                (
                    list(rec.request["input_ids"]),
                    list(rec.response["output_ids"]),
                    [float(x[0]) for x in meta["output_token_logprobs"]],
                )
            )
    return out


async def test_generate_returns_slime_samples(slime: Any, server: SGLangTestServer) -> None:
    Sample = slime.Sample
    sample = Sample(prompt="question 3?", label="42", index=7, group_index=2, metadata={"k": 1})
    out = await slime_generate.generate(_args(server), sample, {"temperature": 1.0})
    assert isinstance(out, Sample)
    assert out.status is Sample.Status.COMPLETED
    assert (out.index, out.group_index, out.rollout_id) == (7, 2, 7)
    assert out.reward == 1.0 and out.metadata["raw_reward"] == 1.0
    assert out.metadata["k"] == 1 and out.metadata["episode_id"]
    # the tokens are the server's: the last call's prompt + its output, masks over the response
    calls = _server_tokens(server)
    assert len(calls) == 2
    last_in, last_out, _ = calls[-1]
    assert out.tokens == last_in + last_out
    assert len(out.loss_mask) == out.response_length == len(out.rollout_log_probs)
    first_in, first_out, first_lp = calls[0]
    assert out.response_length == len(out.tokens) - len(first_in)
    assert out.loss_mask[: len(first_out)] == [1] * len(first_out)
    assert out.rollout_log_probs[: len(first_out)] == first_lp
    assert out.response == load_test_tokenizer().decode(out.tokens[len(first_in) :])


async def test_max_turns_is_completed_and_unscored_left_to_slime(
    slime: Any, server: SGLangTestServer
) -> None:
    Sample = slime.Sample
    sample = Sample(prompt="question 1?", label="42", index=0, group_index=0)
    out = await slime_generate.generate(_args(server, "make_short_agent"), sample, {})
    assert out.status is Sample.Status.COMPLETED
    assert out.reward == 0.0 and out.metadata["raw_reward"] == 0.0
    assert out.metadata["termination_reason"] == EpisodeStatus.MAX_TURNS.value
    sample = Sample(prompt="question 1?", label="42", index=1, group_index=0)
    unscored = await slime_generate.generate(_args(server, reward=False), sample, {})
    assert unscored.reward is None and "raw_reward" not in unscored.metadata


async def test_train_data_conversion_and_debug_rollout(
    slime: Any, server: SGLangTestServer, tmp_path: Path
) -> None:
    stub_gpu_only("sglang")
    manager_module = import_or_skip("slime.ray.rollout", "slime's rollout manager does not import")
    data_utils = import_or_skip(
        "slime.observability.rollout_data_utils", "slime's debug-rollout loader does not import"
    )
    store = tmp_path / "run.jsonl"
    await rollout(
        lambda task: fx.make_agent(task, server.base_url), fx.tasks(2), n_per_task=2,
        reward_fn=fx.reward, store=store, progress=False,
    )  # fmt: skip
    await fx.close_agents()
    path, report = store_to_debug_rollout(store, tmp_path / "rollout_data" / "{rollout_id}.pt")
    assert path == tmp_path / "rollout_data" / "0.pt" and report.rows == 4
    samples = data_utils.load_debug_rollout_data(
        str(tmp_path / "rollout_data" / "{rollout_id}.pt"), rollout_id=0
    )
    assert [type(s).__name__ for s in samples] == ["Sample"] * 4
    assert [s.group_index for s in samples] == [0, 0, 1, 1]

    cls = manager_module.RolloutManager.__ray_metadata__.modified_class
    manager = object.__new__(cls)
    manager.args = Namespace(
        advantage_estimator="grpo", rewards_normalization=True, grpo_std_normalization=True,
        n_samples_per_prompt=2, rollout_batch_size=2, reward_key=None,
    )  # fmt: skip
    manager.custom_reward_post_process_func = None
    manager.custom_convert_samples_to_train_data_func = None
    train = manager._convert_samples_to_train_data(samples)
    assert train["tokens"] == [s.tokens for s in samples]
    assert train["raw_reward"] == [1.0] * 4
    assert train["loss_masks"] == [s.loss_mask for s in samples]
    assert train["rollout_log_probs"] == [s.rollout_log_probs for s in samples]
    assert train["truncated"] == [0] * 4

    again = write_debug_rollout(
        [s.to_dict() for s in samples], tmp_path / "{rollout_id}.pt", rollout_id=3
    )
    assert again == tmp_path / "3.pt"
    reread = data_utils.load_debug_rollout_data(str(tmp_path / "{rollout_id}.pt"), rollout_id=3)
    assert [s.tokens for s in reread] == [s.tokens for s in samples]


async def test_a_sample_failing_every_retry_is_removed_not_scored(
    slime: Any, server: SGLangTestServer
) -> None:
    from agentkit.testing import Fault, FaultKind

    Sample = slime.Sample
    args = _args(server)
    args.agentkit_retries = 1
    server.inject(Fault(FaultKind.HTTP_ERROR, status=503, times=None))  # a dead server
    try:
        sample = Sample(prompt="question 4?", label="42", index=3, group_index=1)
        out = await slime_generate.generate(args, sample, {})
    finally:
        server.clear_faults()
    assert isinstance(out, Sample)
    assert out.status is Sample.Status.FAILED and out.remove_sample is True
    assert out.metadata["agentkit_excluded"] == "infrastructure failure"
    assert out.reward == 0.0 and out.metadata["raw_reward"] == 0.0
    assert (out.index, out.group_index) == (3, 1)
