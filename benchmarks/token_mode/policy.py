"""The scripted "model" of the token-mode benchmark, served by agentkit's SGLang test server.

The same GLM-4.5 completions answer both endpoints: while the conversation holds fewer than K
assistant turns the model calls the ``lookup`` tool once (with a short reasoning), then it answers
with :data:`FINAL_TEXT`. The turn is read from the conversation the server recovered, so the
policy is stateless and concurrent episodes never share a position. K comes from the server's
environment (``AGENTKIT_BENCH_TOOL_CALLS``, default 5).

Serve: ``python -m agentkit.testing serve --policy benchmarks.token_mode.policy:policy``.
"""

from __future__ import annotations

import os

from agentkit.testing import PolicyRequest

TOOL_NAME = "lookup"
FINAL_TEXT = "All lookups done."
TOOL_CALLS_ENV = "AGENTKIT_BENCH_TOOL_CALLS"


def tool_call_completion(turn: int) -> str:
    """Turn ``turn`` (0-based) of an episode that still has lookups to do."""
    return (
        f"<think>Looking up k{turn}.</think>\n<tool_call>{TOOL_NAME}\n"
        f"<arg_key>key</arg_key>\n<arg_value>k{turn}</arg_value>\n</tool_call>"
    )


def final_completion() -> str:
    return f"<think>Every key is looked up.</think>\n{FINAL_TEXT}"


def policy(request: PolicyRequest) -> str:
    """The completion for this conversation: a lookup call, or the final text after K."""
    tool_calls = int(os.environ.get(TOOL_CALLS_ENV, "5"))
    turn = request.assistant_turns
    return tool_call_completion(turn) if turn < tool_calls else final_completion()
