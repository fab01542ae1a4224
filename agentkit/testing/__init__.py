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

Fault injection for client tests: ``server.fail_next(2, status=503)``, ``server.drop_next()``.
Engine knobs: ``latency_s``, ``chunk_delay_s``, ``accept_length`` (EAGLE mean accept length,
``None`` = off), ``stream_tokens_per_chunk``, ``enable_cache_report``, ``weight_version``.
As a process: ``python -m agentkit.testing serve --policy pkg.module:policy`` prints
``READY http://127.0.0.1:PORT``.
"""

from __future__ import annotations

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
