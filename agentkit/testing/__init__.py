"""Testing helpers: a protocol-faithful SGLang test server for GLM-4.5 and an offline tokenizer.

``SGLangTestServer`` answers ``/v1/chat/completions`` and ``/generate`` like SGLang serving
GLM-4.5 with the glm45 parsers (and EAGLE statistics), from a scripted policy instead of a
model::

    from agentkit.testing import Completion, DialoguePolicy, SGLangTestServer

    # raw GLM-4.5 completions, served in order; the stop token is appended automatically
    # (<|observation|> after a tool call, else <|user|>)
    async with SGLangTestServer(policy=[
        "<think>look it up</think>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n"
        "<arg_value>Paris</arg_value>\n</tool_call>",
        "<think>done</think>\nIt is sunny in Paris.",
    ]) as server:
        ...  # SGLangChat(server.base_url) or SGLangTokens(server.base_url, build_test_tokenizer())
        server.requests  # every request and response (or stream chunks)

    # a callable sees the conversation (recovered from the prompt in token mode)
    def policy(request: PolicyRequest) -> str | Completion: ...

    # concurrent episodes: one script per first user message, chosen by turn number
    DialoguePolicy({"Weather in Paris?": [...], "Book a table": [...]})

Fault injection, to test an agent against a failing server (:mod:`agentkit.testing.faults`)::

    from agentkit.testing import Fault, FaultKind

    server.inject(Fault(FaultKind.TRUNCATED_STREAM))             # the next request only
    server.inject(Fault(FaultKind.RATE_LIMITED, retry_after_s=2))  # 429 + Retry-After
    server.inject(Fault(FaultKind.HANG, times=None, hang_s=30))    # every request, until
    server.clear_faults()                                          # ... this

Kinds: ``http_error`` (5xx), ``rate_limited`` (429 + ``Retry-After``), ``connection_reset``,
``hang``, ``invalid_json``, ``wrong_shape``, ``truncated_stream``, ``error_event`` (SSE
``{"error": ...}``), ``malformed_tool_call`` (the model's mistake: invalid JSON arguments in
chat mode, an unclosed ``<tool_call>`` on ``/generate``) and ``server_death`` (stops listening,
back after ``revive_after_s`` or never). Streamed faults strike after ``after_events`` events.
``server.injected`` lists what each faulted request got. The older shortcuts remain:
``server.fail_next(2, status=503)``, ``server.drop_next()``.
Engine knobs: ``latency_s``, ``chunk_delay_s``, ``accept_length`` (EAGLE mean accept length,
``None`` = off), ``stream_tokens_per_chunk``, ``enable_cache_report``, ``weight_version``.
As a process: ``python -m agentkit.testing serve --policy pkg.module:policy`` prints
``READY http://127.0.0.1:PORT``; ``--fault KIND``, ``--fault KIND:N`` or ``--fault KIND:always``
(repeatable) injects faults from the start.
"""

from __future__ import annotations

from .faults import Fault, FaultKind
from .policy import (
    Completion,
    DialoguePolicy,
    Policy,
    PolicyExhausted,
    PolicyRequest,
    ScriptedPolicy,
)
from .prompt_parsing import RecoveredPrompt, parse_prompt
from .server import SGLangTestServer
from .state import RequestRecord, ServerOptions
from .test_tokenizer import (
    GLM45_SPECIAL_TOKENS,
    GLM45_VOCAB_SIZE,
    build_test_tokenizer,
    load_test_tokenizer,
)

__all__ = [
    "GLM45_SPECIAL_TOKENS",
    "GLM45_VOCAB_SIZE",
    "Completion",
    "DialoguePolicy",
    "Fault",
    "FaultKind",
    "Policy",
    "PolicyExhausted",
    "PolicyRequest",
    "RecoveredPrompt",
    "RequestRecord",
    "SGLangTestServer",
    "ScriptedPolicy",
    "ServerOptions",
    "build_test_tokenizer",
    "load_test_tokenizer",
    "parse_prompt",
]
