"""Parquet SFT against verl's own multi-turn SFT dataset with GLM-4.5's chat template: dict
tool-call arguments (two tools with different argument names in one file), the top-level
``enable_thinking`` column, and verl's tokenization of the rows. The template is read from
``../shared/glm45/``; verl pins transformers<5.11: where either is missing, the test skips."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentkit import Agent, tool
from agentkit.integrations.verl.sft import verl_sft_records, write_verl_sft
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.rollout import rollout
from agentkit.testing import PolicyRequest, SGLangTestServer, build_test_tokenizer
from agentkit.trajectory.store import read_store
from tests import rollout_fixture as fx
from tests.trainer_sources import import_or_skip

pytestmark = pytest.mark.anyio

TEMPLATE = Path(__file__).resolve().parents[3] / "shared" / "glm45" / "chat_template.jinja"
WHY = "verl's SFT dataset does not import here (pip install verl==0.9.1 torch transformers==5.9)"


@tool
def note(text: str, level: int) -> str:
    """Write a note."""
    return f"noted at level {level}"


def policy(request: PolicyRequest) -> str:
    last = request.last_message or {}
    tools_seen = [m for m in request.messages if m.get("role") == "tool"]
    if last.get("role") == "tool" and len(tools_seen) >= 2:
        return "<think>done</think>\nAnswer: 42"
    if last.get("role") == "tool":
        return (
            "<think>note it</think>\n<tool_call>note\n<arg_key>text</arg_key>\n"
            "<arg_value>the answer is 42</arg_value>\n<arg_key>level</arg_key>\n"
            "<arg_value>3</arg_value>\n</tool_call>"
        )
    return fx.policy(request)


@pytest.fixture
async def server() -> AsyncIterator[SGLangTestServer]:
    async with SGLangTestServer(policy=policy) as srv:
        yield srv


async def _store(server: SGLangTestServer, tmp_path: Path) -> Path:
    agent = Agent(
        model=SGLangTokens(server.base_url, build_test_tokenizer()),
        instructions="Answer with the help of lookup.",
        tools=[fx.lookup, note],
        max_turns=5,
    )
    store = tmp_path / "run.jsonl"
    try:
        await rollout(
            lambda task: agent, fx.tasks(2), n_per_task=1, reward_fn=fx.reward, store=store,
            progress=False,
        )  # fmt: skip
    finally:
        await agent.aclose()
    return store


async def test_records_have_dict_arguments(server: SGLangTestServer, tmp_path: Path) -> None:
    rows = verl_sft_records(read_store(await _store(server, tmp_path)).finished)
    assert len(rows) == 2
    calls = [c for m in rows[0]["messages"] for c in m.get("tool_calls") or []]
    assert [c["function"]["arguments"] for c in calls] == [
        {"q": "question 0?"},
        {"text": "the answer is 42", "level": "3"},  # as the template renders an int
    ]
    assert rows[0]["enable_thinking"] is True
    assert all("call_index" not in m for m in rows[0]["messages"])


async def test_verl_dataset_loads_the_parquet(server: SGLangTestServer, tmp_path: Path) -> None:
    if not TEMPLATE.exists():
        pytest.skip(f"GLM-4.5's chat template is absent ({TEMPLATE})")
    transformers = import_or_skip("transformers", WHY)
    import_or_skip("verl.utils.dataset.multiturn_sft_dataset", WHY)
    from agentkit.integrations.verl import sft

    store = await _store(server, tmp_path)
    parquet = tmp_path / "sft.parquet"
    report = write_verl_sft(read_store(store).finished, parquet)
    assert report.rows == 2
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(build_test_tokenizer()), pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = TEMPLATE.read_text()
    dataset = sft.AgentkitMultiTurnSFTDataset(
        [str(parquet)], tokenizer, config={"max_length": 4096, "pad_mode": "no_padding"}
    )
    assert len(dataset) == 2
    assert dataset.enable_thinking == [True, True]
    item = dataset[0]  # verl's per-turn tokenization check runs here and passes
    ids = item["input_ids"].tolist()
    mask = item["loss_mask"].tolist()
    text = tokenizer.decode(ids)
    # the dict arguments rendered as GLM-4.5 writes them, no argument of the other tool
    assert "<arg_key>q</arg_key>\n<arg_value>question 0?</arg_value>" in text
    assert "<arg_key>level</arg_key>\n<arg_value>3</arg_value>" in text
    assert text.split("<|user|>", 1)[1].count("<arg_key>") == 3  # the tool prompt has 2
    assert "None" not in text and "null" not in text
    # the loss covers the assistant turns only: what it masks in decodes to their text
    trained = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert "Answer: 42" in trained and "question 0?" in trained  # the model's own call
    assert "the answer to question 0? is 42" not in trained  # a tool result is not trained


async def test_plain_verl_dataset_would_render_the_other_calls_arguments(
    server: SGLangTestServer, tmp_path: Path
) -> None:
    """Why the subclass: Parquet's struct column gives each call every argument name."""
    if not TEMPLATE.exists():
        pytest.skip(f"GLM-4.5's chat template is absent ({TEMPLATE})")
    transformers = import_or_skip("transformers", WHY)
    base = import_or_skip("verl.utils.dataset.multiturn_sft_dataset", WHY)
    parquet = tmp_path / "sft.parquet"
    write_verl_sft(read_store(await _store(server, tmp_path)).finished, parquet)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_file=str(build_test_tokenizer()), pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = TEMPLATE.read_text()
    plain = base.MultiTurnSFTDataset([str(parquet)], tokenizer, config={"pad_mode": "no_padding"})
    text = tokenizer.decode(plain[0]["input_ids"].tolist())
    assert "<arg_key>text</arg_key>\n<arg_value>null</arg_value>" in text
