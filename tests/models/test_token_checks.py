"""The check a token session puts on a whole ``/generate`` reply: SGLang's fields (log-probs
when asked for) and, when replay data is asked for, that data; what the reply keeps of the
engine's ``meta_info``."""

from __future__ import annotations

from typing import Any

import pytest

from agentkit.models.failures import AttemptFailure, ProtocolError
from agentkit.models.replay_wire import ENGINE_META_EXCLUDED, ReplayRequest
from agentkit.models.sglang_tokens import SGLangTokens, _engine_fields
from agentkit.testing import load_test_tokenizer


def reply(*, logprobs: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"finish_reason": {"type": "stop", "matched": 151338}}
    if logprobs:
        meta["output_token_logprobs"] = [[-0.5, 5, None]]
    return {"text": "x", "output_ids": [5], "meta_info": meta}


@pytest.mark.parametrize("asked", [True, False, 1, "yes"])
def test_log_probs_are_required_exactly_when_asked_for(asked: Any) -> None:
    model = SGLangTokens("http://127.0.0.1:9", load_test_tokenizer(), return_logprob=asked)
    check = model.session(routing_key="k")._validator(ReplayRequest(), 3)
    assert check(reply(logprobs=True))["output_ids"] == [5]
    if asked:
        with pytest.raises(ProtocolError, match="log-probs were asked for"):
            check(reply(logprobs=False))
    else:
        assert check(reply(logprobs=False))["output_ids"] == [5]


def test_replay_data_asked_for_is_checked() -> None:
    model = SGLangTokens("http://127.0.0.1:9", load_test_tokenizer(), sampling_mask=True)
    session = model.session(routing_key="k")
    check = session._validator(session._replay(), 3)
    with pytest.raises(AttemptFailure, match="sampling") as failure:
        check(reply(logprobs=True))
    assert failure.value.retryable is False


@pytest.mark.parametrize("excluded", [(), ENGINE_META_EXCLUDED, ENGINE_META_EXCLUDED[1:3]])
def test_the_engine_meta_is_meta_info_without_the_excluded_keys_in_order(
    excluded: tuple[str, ...],
) -> None:
    meta: dict[str, Any] = {"id": "r", "finish_reason": {"type": "stop"}}
    for key in excluded:
        meta[key] = [[-0.5, 5, None]]
    meta.update({"e2e_latency": 0.5, "cached_tokens": 3})
    _, _, engine_meta = _engine_fields(meta, ReplayRequest(), [5], True, 3)
    expected = {k: v for k, v in meta.items() if k not in ENGINE_META_EXCLUDED}
    assert list(engine_meta.items()) == list(expected.items())
    assert engine_meta is not meta and set(meta) >= set(excluded)  # meta_info left as it was
