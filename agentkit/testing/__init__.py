"""Testing helpers: a protocol-faithful SGLang test server for GLM-4.5 and an offline tokenizer.

``SGLangTestServer`` answers ``/v1/chat/completions`` and ``/generate`` like SGLang serving
GLM-4.5 with the glm45 parsers, from a scripted policy instead of a model.
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
