"""The problems both parsing paths report, worded in one place so the paths agree exactly."""

from __future__ import annotations

from .results import Problem

MISSING_THINK = Problem(
    kind="missing_think",
    message="thinking was on but the output has no <think> block; its text is kept as content",
)
UNCLOSED_THINK = Problem(
    kind="unclosed_think", message="the output ended inside <think> without </think>"
)
TEXT_AFTER_CALLS = Problem(
    kind="text_after_tool_calls", message="text after a tool call is appended to content"
)


def missing_name_newline(name: str, index: int) -> Problem:
    return Problem(
        kind="missing_name_newline",
        message=f"no newline after the function name {name!r} in <tool_call>",
        call_index=index,
    )


def unknown_tool(name: str, index: int) -> Problem:
    return Problem(kind="unknown_tool", message=f"call to unknown tool {name!r}", call_index=index)


def invalid_value(name: str, key: str, issue: str, index: int) -> Problem:
    return Problem(
        kind="invalid_argument_value",
        message=f"call {name!r}, argument {key!r}: {issue}; kept as text",
        call_index=index,
    )


def duplicate_argument(name: str, key: str, index: int) -> Problem:
    # SGLang's glm45 parser keeps the last value too, but says nothing
    return Problem(
        kind="duplicate_argument",
        message=f"call {name!r}: argument {key!r} is given more than once; the last value is kept",
        call_index=index,
    )


def unclosed_call(index: int | None) -> Problem:
    return Problem(
        kind="unclosed_tool_call",
        message="the output ended inside a <tool_call>; its text is kept as content",
        call_index=index,
    )


def missing_value(name: str, key: str, index: int) -> Problem:
    return Problem(
        kind="malformed_arguments",
        message=f"argument {key!r} of call {name!r} has no <arg_value>",
        call_index=index,
    )


def stray_text(name: str, where: str, stray: str, index: int) -> Problem:
    """Text that is not markup inside a call (``stray`` already stripped)."""
    return Problem(
        kind="malformed_arguments",
        message=f"call {name!r}: {where}: {stray[:60]!r}",
        call_index=index,
    )


STRAY_IN_BODY = "text outside <arg_key>/<arg_value> pairs"


def stray_before_value(key: str) -> str:
    return f"text between <arg_key>{key}</arg_key> and its value"
