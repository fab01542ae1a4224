"""Parse one raw GLM-4.5 completion into reasoning, content and typed tool calls.

Input is the text SGLang's ``/generate`` returns with ``skip_special_tokens: false`` and
``no_stop_trim: true``: it may start with ``\\n`` and/or ``<think>`` and may end with a stop token
(``<|user|>``, ``<|observation|>``, ``<|endoftext|>``), which goes to ``Parsed.stop``.

Rules:

- ``<think>R</think>`` (after optional leading whitespace) gives ``reasoning = R`` as written
  (``None`` when empty or absent).
- Content is the text outside the markup. Each stretch of text (before the calls, between or
  after them) is stripped and non-empty stretches are joined with ``\\n``.
- ``<tool_call>NAME\\n(<arg_key>K</arg_key>\\n<arg_value>V</arg_value>\\n)*</tool_call>`` gives a
  call; values are typed from the tools' JSON schemas (see ``typing_.py``).

On well-formed output this agrees with SGLang's ``glm45`` reasoning and tool-call parsers on
reasoning, content, call names and argument values, except for these deliberate differences:

1. String-typed argument values are the raw text verbatim, the exact inverse of the template
   (SGLang strips surrounding quotes from ``"Paris"``, decodes JSON escapes, re-serialises JSON
   objects and, before its fix, turned ``true`` into ``"True"``).
2. Content without tool calls is stripped (SGLang keeps the ``\\n`` that follows ``</think>``);
   with calls SGLang strips it too.
3. ``\\n<think>...`` (a newline before ``<think>``) gives the reasoning without the ``<think>``
   tag (SGLang's non-streaming path returns ``"\\n<think>..."`` as reasoning).
4. With ``thinking=True`` and no ``<think>`` block, the text is content, with a
   ``missing_think`` problem; SGLang's forced reasoning turns the whole answer into
   ``reasoning_content``. A ``</think>`` without an opening tag stays in the content.
5. Calls are parsed even when no tools are given (values then untyped; SGLang leaves the markup
   in content); untyped values are JSON when they parse as JSON, else text (SGLang also tries
   Python literals, turning ``123_456`` into ``123456``).

On malformed output nothing is dropped silently (SGLang drops all of these):

- a call to a tool not in ``tools`` is returned, with an ``unknown_tool`` problem;
- an unclosed ``<tool_call>`` keeps its text in content (``unclosed_tool_call``);
- a name not followed by a newline is parsed up to the next tag (``missing_name_newline``);
- a value that does not fit its schema type is kept as the raw text (``invalid_argument_value``);
  so is an untyped number JSON cannot hold (``1e999``, which Python would read as ``inf``);
- an argument key given twice keeps the last value, as SGLang does (``duplicate_argument``);
- text after the calls is appended to content (``text_after_tool_calls``);
- stray text inside a call is reported (``malformed_arguments``) and kept in the call's ``raw``;
- ``<think>`` without ``</think>`` keeps everything as reasoning (``unclosed_think``); a
  ``<tool_call>`` inside it ends the reasoning, as in SGLang.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .common_shapes import Plain, parse_common, scan_common
from .results import Parsed
from .stream import StreamParser
from .typing_ import ToolSchemas


def parse(
    text: str,
    tools: Sequence[Mapping[str, Any]] | ToolSchemas | None = None,
    *,
    thinking: bool = True,
) -> Parsed:
    """Parse one raw completion (see the module docstring for the rules).

    ``tools`` may also be a ``ToolSchemas`` built once for many completions; a list passed again
    is typed from schemas kept for it (``schema_cache.py``). Common shapes, and
    calls cut off or damaged, take a single forward scan (``common_shapes.py``,
    ``damaged_calls.py``); anything else goes through the general state machine the streaming
    parser runs, with the same result.
    """
    parsed = parse_common(text, tools, thinking=thinking, damaged=True)
    return parsed if parsed is not None else parse_general(text, tools, thinking=thinking)


def parse_general(
    text: str,
    tools: Sequence[Mapping[str, Any]] | ToolSchemas | None = None,
    *,
    thinking: bool = True,
) -> Parsed:
    """``parse`` through the general state machine only (what ``parse`` falls back to)."""
    parser = StreamParser(tools, thinking=thinking)
    parser.close(text)
    return parser.result()


def parse_plain(
    text: str,
    tools: Sequence[Mapping[str, Any]] | ToolSchemas | None = None,
    *,
    thinking: bool = True,
) -> Plain:
    """``parse`` as plain values: reasoning, content, the calls as ``(name, arguments, raw)``
    in order, the problems and the stop token, for a caller that reads the parse once (token
    mode) without the models ``parse`` builds. The same values as ``parse`` gives
    (tests/dialects/test_glm45_perf_paths.py, test_glm45_speed_paths.py); the arguments dicts
    are this parse's own."""
    plain = scan_common(text, tools, thinking=thinking, damaged=True)
    if plain is not None:
        return plain
    parsed = parse_general(text, tools, thinking=thinking)
    calls = [(call.name, call.arguments, call.raw) for call in parsed.tool_calls]
    return parsed.reasoning, parsed.content, calls, parsed.problems, parsed.stop
