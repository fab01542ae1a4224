"""Toolsets: ordered, immutable groups of :class:`~agentkit.tool.Tool` objects that compose.

A :class:`Toolset` is a sequence of tools, so it goes wherever a list of tools does
(``Agent(tools=toolset)``). Every operation returns a new toolset and leaves the tools it was
made from untouched::

    tools = code_tools().filter({"read_file", "run_tests"}) + Toolset(mcp.tools).prefix("time_")

``+`` (with another toolset or any iterable of tools) keeps the order and refuses two tools with
one name: a :class:`DuplicateToolName` error names the tool, rather than one silently hiding
the other.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import Enum
from typing import Any, overload

from agentkit.tool import RunContext, Tool

DepsResolver = Callable[[RunContext[Any]], Any]
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # the names Tool accepts


class _Keep(Enum):
    KEEP = "keep"  # with_limits: leave each tool's own value


class DuplicateToolName(ValueError):
    """Two tools of one toolset would share a name."""


class Toolset(Sequence[Tool]):
    """An ordered, immutable collection of tools with unique names.

    Args:
        tools: the tools, in the order the model will see them.
    """

    __slots__ = ("_tools",)

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        items = tuple(tools)
        for index, item in enumerate(items):
            if not isinstance(item, Tool):
                raise TypeError(f"toolset item {index} is not a Tool: {item!r}")
        _check_unique(items)
        self._tools = items

    # --- the sequence -----------------------------------------------------------------------

    @overload
    def __getitem__(self, index: int) -> Tool: ...

    @overload
    def __getitem__(self, index: slice) -> Toolset: ...

    def __getitem__(self, index: int | slice) -> Tool | Toolset:
        if isinstance(index, slice):
            return Toolset(self._tools[index])
        return self._tools[index]

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools)

    def __contains__(self, item: object) -> bool:
        """``"read_file" in toolset`` asks by name; a :class:`Tool` is looked up as itself."""
        if isinstance(item, str):
            return item in self.names
        return item in self._tools

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Toolset) and self._tools == other._tools

    def __hash__(self) -> int:
        return hash(self._tools)

    def __repr__(self) -> str:
        return f"Toolset({list(self.names)!r})"

    @property
    def names(self) -> tuple[str, ...]:
        """The tools' names, in order."""
        return tuple(t.name for t in self._tools)

    def get(self, name: str) -> Tool:
        """The tool called ``name``; a ``KeyError`` lists the names there are."""
        for item in self._tools:
            if item.name == name:
                return item
        raise KeyError(f"no tool named {name!r} in this toolset (it has {', '.join(self.names)})")

    # --- composing ----------------------------------------------------------------------------

    def __add__(self, other: Iterable[Tool]) -> Toolset:
        if isinstance(other, str | bytes) or not isinstance(other, Iterable):
            return NotImplemented
        return Toolset((*self._tools, *other))

    def __radd__(self, other: Iterable[Tool]) -> Toolset:
        if isinstance(other, str | bytes) or not isinstance(other, Iterable):
            return NotImplemented
        return Toolset((*other, *self._tools))

    def filter(self, keep: Iterable[str] | Callable[[Tool], bool]) -> Toolset:
        """The tools named in ``keep`` (every name must exist), or those ``keep(tool)`` accepts;
        in this toolset's order either way."""
        if callable(keep):
            return Toolset(t for t in self._tools if keep(t))
        if isinstance(keep, str):
            raise TypeError("filter takes a collection of names, not one string")
        wanted = set(keep)
        unknown = sorted(wanted - set(self.names))
        if unknown:
            raise KeyError(f"no tools named {unknown} in this toolset (it has {list(self.names)})")
        return Toolset(t for t in self._tools if t.name in wanted)

    def exclude(self, names: Iterable[str]) -> Toolset:
        """Every tool except those named (every name must exist)."""
        dropped = set(self.filter(names).names)
        return Toolset(t for t in self._tools if t.name not in dropped)

    def prefix(self, prefix: str) -> Toolset:
        """Every tool renamed ``prefix + name`` (to keep two toolsets' names apart)."""
        return Toolset(_with(t, name=_checked_name(prefix + t.name)) for t in self._tools)

    def rename(self, names: Mapping[str, str]) -> Toolset:
        """Rename tools by ``{"old": "new"}``; every old name must exist, the others stay."""
        unknown = sorted(set(names) - set(self.names))
        if unknown:
            raise KeyError(f"cannot rename {unknown}: no such tools (it has {list(self.names)})")
        return Toolset(
            _with(t, name=_checked_name(names[t.name])) if t.name in names else t
            for t in self._tools
        )

    # --- resources and limits -----------------------------------------------------------------

    def with_deps(self, deps: Any) -> Toolset:
        """Every tool runs with ``deps`` as its ``ctx.deps``, whatever the run passed (binds a
        resource, such as a sandbox or a browser session, when the toolset is built)."""
        return self.with_deps_from(lambda _ctx: deps)

    def with_deps_from(self, resolve: DepsResolver) -> Toolset:
        """Every tool runs with ``resolve(ctx)`` as its ``ctx.deps``, computed for each call from
        the run's context; what ``resolve`` raises becomes that call's error outcome."""
        return Toolset(_bound(t, resolve) for t in self._tools)

    def with_limits(
        self, *, timeout: float | _Keep | None = _Keep.KEEP, max_output_chars: int | None = None
    ) -> Toolset:
        """Every tool with this ``timeout`` (seconds; ``None`` for none) and/or this output limit
        (characters); an argument left out keeps each tool's own."""
        changes: dict[str, Any] = {}
        if not isinstance(timeout, _Keep):
            if timeout is not None and timeout <= 0:
                raise ValueError("timeout must be positive (or None for no limit)")
            changes["timeout"] = timeout
        if max_output_chars is not None:
            if max_output_chars < 1:
                raise ValueError("max_output_chars must be positive")
            changes["max_output_chars"] = max_output_chars
        return Toolset(_with(t, **changes) for t in self._tools)


def _check_unique(items: Sequence[Tool]) -> None:
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.name in seen:
            raise DuplicateToolName(
                f"two tools are named {item.name!r} (items {seen[item.name]} and {index}); "
                "rename or prefix one of them"
            )
        seen[item.name] = index


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"tool name {name!r} must be 1-64 letters, digits, '_', '.', '-'")
    return name


def _with(item: Tool, **changes: Any) -> Tool:
    """A shallow copy of ``item`` (its class kept) with some attributes changed."""
    clone = copy.copy(item)
    for key, value in changes.items():
        setattr(clone, key, value)
    return clone


def _bound(item: Tool, resolve: DepsResolver) -> Tool:
    if type(item).call is not Tool.call:
        raise TypeError(
            f"tool {item.name!r} ({type(item).__name__}) does not run through its handler, "
            "so its deps cannot be rebound"
        )
    inner = item.handler

    async def handler(values: dict[str, Any], ctx: RunContext[Any]) -> Any:
        return await inner(values, dataclasses.replace(ctx, deps=resolve(ctx)))

    # the clone must run through the new handler: a sync tool's inline fast path
    # (``Tool._sync``) would call the function with the outer run's deps
    return _with(item, handler=handler, _sync=None)
