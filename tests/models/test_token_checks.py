"""The check a token session puts on a whole ``/generate`` reply: SGLang's fields (log-probs
when asked for) and, when replay data is asked for, that data."""

from __future__ import annotations

from typing import Any

import pytest

from agentkit.models.failures import AttemptFailure, ProtocolError
from agentkit.models.replay_wire import ReplayRequest
from agentkit.models.sglang_tokens import SGLangTokens
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
