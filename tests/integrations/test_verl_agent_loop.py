"""The verl plug-in against verl's own code: verl's registry holds the agentkit agent loop,
hydra instantiates it as verl's worker does, and its ``run`` returns verl's ``AgentLoopOutput``
built from an agentkit episode played through a server manager (the stand-in for verl's, which
needs GPU servers: it sends verl's SGLang request to the test server's ``/generate`` and answers
verl's ``TokenOutput``); ``uid`` is the episode's group, tokens/mask/log-probs are the server's.
verl pins transformers<5.11 (tokenizers<=0.23.0): where that does not import, the test skips."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agentkit import Agent
from agentkit.testing import SGLangTestServer, build_test_tokenizer
from tests import rollout_fixture as fx
from tests.trainer_sources import import_or_skip

pytestmark = pytest.mark.anyio

WHY = "verl's agent loop does not import here (pip install verl==0.9.1 torch transformers==5.9)"


@pytest.fixture(scope="module")
def verl_loop() -> Any:
    module = import_or_skip("verl.experimental.agent_loop.agent_loop", WHY)
    import agentkit.integrations.verl.agent_loop  # noqa: F401  (registers "agentkit")

    return module


@pytest.fixture
async def server() -> AsyncIterator[SGLangTestServer]:
    async with SGLangTestServer(policy=fx.policy) as srv:
        yield srv


class ServerManagerOverTestServer:
    """verl's ``LLMServerClient.generate`` contract over the SGLang test server."""

    def __init__(self, base_url: str, token_output: Any) -> None:
        self.base_url = base_url
        self.token_output = token_output
        self.request_ids: list[str] = []

    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any]
    ) -> Any:
        import httpx

        self.request_ids.append(request_id)
        params = dict(sampling_params)
        logprob = bool(params.pop("logprobs", False))
        body = {
            "rid": f"{request_id}-{len(self.request_ids) - 1}-verl",
            "input_ids": prompt_ids,
            "sampling_params": params,
            "return_logprob": logprob,
        }
        async with httpx.AsyncClient() as client:
            reply = (await client.post(f"{self.base_url}/generate", json=body)).json()
        meta = reply["meta_info"]
        return self.token_output(
            token_ids=reply["output_ids"],
            log_probs=[float(x[0]) for x in meta["output_token_logprobs"]] if logprob else None,
            stop_reason="aborted" if meta["finish_reason"]["type"] == "abort" else "completed",
        )


def make_agent(model: Any) -> Agent[Any, Any]:
    """The factory named in the agent-loop config: verl's model in, an agent out."""
    return Agent(
        model=model, instructions="Answer with the help of lookup.", tools=[fx.lookup], max_turns=4
    )


def _hf_tokenizer() -> Any:
    transformers = import_or_skip("transformers", WHY)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(build_test_tokenizer()), pad_token="<|endoftext|>"
    )


def _loop(verl_loop: Any, manager: Any, **extra: Any) -> Any:
    import hydra
    from omegaconf import OmegaConf

    rl_dataset = import_or_skip("verl.utils.dataset.rl_dataset", WHY)
    config = OmegaConf.create(
        {
            "actor_rollout_ref": {"rollout": {"prompt_length": 2048, "response_length": 2048}},
            "data": {"apply_chat_template_kwargs": {}},
        }
    )
    entry = dict(verl_loop._agent_loop_registry["agentkit"])
    entry.update(agent_factory="tests.integrations.test_verl_agent_loop:make_agent", **extra)
    return hydra.utils.instantiate(
        config=entry,
        trainer_config=verl_loop.DictConfigWrap(config=config),
        server_manager=manager,
        tokenizer=_hf_tokenizer(),
        processor=None,
        dataset_cls=rl_dataset.RLHFDataset,
        data_config=verl_loop.DictConfigWrap(config.data),
    )


async def test_verl_runs_an_agentkit_episode(verl_loop: Any, server: SGLangTestServer) -> None:
    replica = import_or_skip("verl.workers.rollout.replica", WHY)
    manager = ServerManagerOverTestServer(server.base_url, replica.TokenOutput)
    assert verl_loop._agent_loop_registry["agentkit"]["_target_"] == (
        "agentkit.integrations.verl.agent_loop.AgentkitAgentLoop"
    )
    loop = _loop(verl_loop, manager, reward_fn="tests.rollout_fixture:reward")
    outputs = []
    for index in range(2):  # two samples of one GRPO group (verl's uid)
        out = await loop.run(
            {"temperature": 1.0, "top_p": 1.0, "logprobs": True},
            raw_prompt=[{"role": "user", "content": "question 5?"}],
            uid="group-7",
            index=index,
            reward_model={"ground_truth": "42"},
        )
        outputs.append(out)
    for out in outputs:
        assert isinstance(out, verl_loop.AgentLoopOutput)
        assert out.extra_fields["agentkit_group"] == "group-7"
        assert out.reward_score == 1.0
        assert out.num_turns == 4  # prompt, call, one round of tool results, call
        assert len(out.response_ids) == len(out.response_mask) == len(out.response_logprobs)
    # the ids, mask and log-probs are the server's, call by call
    records = [r for r in server.generation_requests() if r.path == "/generate"]
    assert len(records) == 4 and len(set(manager.request_ids)) == 2  # one sticky id per episode
    first, second = records[0], records[1]
    out = outputs[0]
    assert out.prompt_ids == first.request["input_ids"]
    assert out.prompt_ids + out.response_ids == (
        second.request["input_ids"] + second.response["output_ids"]
    )
    n_first = len(first.response["output_ids"])
    assert out.response_mask[:n_first] == [1] * n_first
    context = len(second.request["input_ids"]) - len(first.request["input_ids"]) - n_first
    assert out.response_mask[n_first : n_first + context] == [0] * context
    expected_lp = [float(x[0]) for x in first.response["meta_info"]["output_token_logprobs"]]
    assert out.response_logprobs[:n_first] == expected_lp
    # verl's own conversion of the output to tensors takes it
    tensors = out.as_dict()
    assert tensors["responses"].tolist() == out.response_ids
    assert float(tensors["rm_scores"][-1]) == 1.0


async def test_unscored_and_failed_samples(verl_loop: Any, server: SGLangTestServer) -> None:
    from agentkit.testing import Fault, FaultKind

    replica = import_or_skip("verl.workers.rollout.replica", WHY)
    loop = _loop(verl_loop, ServerManagerOverTestServer(server.base_url, replica.TokenOutput))
    prompt = [{"role": "user", "content": "question 2?"}]
    unscored = await loop.run({}, raw_prompt=prompt, uid="g", index=0)
    assert unscored.reward_score is None  # verl's reward loop scores it
    # every attempt (1 + 2 retries) hits a dead server: an all-masked output that says why
    server.inject(Fault(FaultKind.HTTP_ERROR, status=503, times=3))
    failed = await loop.run({}, raw_prompt=prompt, uid="g", index=1)
    assert failed.extra_fields["agentkit_attempts"] == 3
    assert failed.extra_fields["agentkit_excluded"] == "infrastructure failure"
    assert set(failed.response_mask) == {0}
    server.inject(Fault(FaultKind.HTTP_ERROR, status=503, times=1))
    retried = await loop.run({}, raw_prompt=prompt, uid="g", index=2)
    assert retried.extra_fields["agentkit_attempts"] == 2
    assert 1 in retried.response_mask
