"""Checks of an agent's configuration, run when the agent is built.

Each check raises at once with a message that names the argument and the bad value, so the
traceback points at the line that built the agent instead of failing at the first run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentkit.tool import Tool, ToolLike, as_tool


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_count(name: str, value: Any, *, minimum: int, optional: bool) -> None:
    if value is None and optional:
        return
    if not _is_int(value):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__} ({value!r})")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def check_limits(
    *,
    max_turns: Any,
    output_retries: Any,
    max_parallel_tools: Any,
    max_tool_calls_per_turn: Any,
) -> None:
    """``max_turns`` >= 1, ``output_retries`` >= 0, the optional tool limits >= 1."""
    _check_count("max_turns", max_turns, minimum=1, optional=False)
    _check_count("output_retries", output_retries, minimum=0, optional=False)
    _check_count("max_parallel_tools", max_parallel_tools, minimum=1, optional=True)
    _check_count("max_tool_calls_per_turn", max_tool_calls_per_turn, minimum=1, optional=True)


def check_model(model: Any) -> None:
    """A model backend: ``name``, ``mode``, ``session()`` and ``aclose()``."""
    missing = [
        attribute
        for attribute in ("name", "mode", "session", "aclose")
        if not hasattr(model, attribute)
    ]
    if missing:
        raise TypeError(
            f"model must be a model backend (SGLangChat, SGLangTokens, ...); "
            f"{type(model).__name__} has no {', '.join(missing)}"
        )
    if not callable(model.session) or not callable(model.aclose):
        raise TypeError(f"model {type(model).__name__}: session and aclose must be methods")


def check_recorder(recorder: Any, name: str) -> None:
    if recorder is not None and not callable(getattr(recorder, "record", None)):
        raise TypeError(
            f"{name} must have an async record(item) method (a JsonlStore, MemoryRecorder, "
            f"...), not {type(recorder).__name__}"
        )


def check_hook(hook: Any, name: str) -> None:
    if hook is not None and not callable(hook):
        raise TypeError(f"{name} must be a callable (a hook), not {type(hook).__name__}")


def build_tools(tools: Any, extra: Sequence[Tool] = ()) -> list[Tool]:
    """The agent's tools from ``tools`` (functions or :class:`Tool`), plus ``extra`` (built-in
    tools such as ``final_result``). Rejects a non-tool item, a bad name and a name used twice."""
    if isinstance(tools, str | bytes) or not isinstance(tools, Sequence | set | frozenset):
        raise TypeError(f"tools must be a list of tools, not {type(tools).__name__}")
    built: list[Tool] = []
    for index, item in enumerate(tools):
        built.append(_one_tool(index, item))
    seen: dict[str, int] = {}
    for index, tool in enumerate([*built, *extra]):
        if tool.name in seen:
            first = seen[tool.name]
            where = f"tools[{index}]" if index < len(built) else "the built-in tool"
            raise ValueError(
                f"two tools are named {tool.name!r}: tools[{first}] and {where}; "
                "tool names must be unique (rename one with @tool(name=...))"
            )
        seen[tool.name] = index
    return [*built, *extra]


def _one_tool(index: int, item: ToolLike) -> Tool:
    if isinstance(item, Tool):
        return item
    if not callable(item):
        raise TypeError(
            f"tools[{index}] is not a tool: {item!r} ({type(item).__name__}); pass a typed "
            "function or an agentkit Tool"
        )
    try:
        return as_tool(item)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"tools[{index}] ({_label(item)}): {exc}") from exc


def _label(item: Any) -> str:
    name = getattr(item, "__qualname__", None) or getattr(item, "__name__", None)
    return str(name) if name else type(item).__name__
