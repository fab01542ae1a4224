"""The ``ToolSchemas`` of a tool list passed again, kept from one completion to the next.

An agent passes the same tool list with every turn; working out its argument types again for
each completion is much of the cost of parsing a short one. The last few lists (or tuples) seen
are kept by identity, each with the tools it held: one passed again holding the very same tool
objects (none added, removed or replaced) gets the schemas compiled for it on its second use.
One that differs in any of that is read afresh, as is anything but a list or a tuple. A tool's
dict changed in place is not noticed: to change a tool, put a new dict in the list (or pass a
new list), as with ``ToolSchemas.compiled``.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from .typing_ import ToolSchemas

_KEPT = 8  # lists kept (an agent has one or a few)


class _Entry:
    __slots__ = ("held", "schemas", "tools")

    def __init__(self, tools: Sequence[Mapping[str, Any]]) -> None:
        self.tools = tools  # held, so that its id is not reused while it is kept
        self.held = tuple(tools)
        self.schemas: ToolSchemas | None = None  # compiled on the second use

    def holds(self, tools: Sequence[Mapping[str, Any]]) -> bool:
        held = self.held
        return len(tools) == len(held) and all(map(operator.is_, tools, held))


_entries: dict[int, _Entry] = {}
_lock = threading.Lock()


def schemas_for(tools: Sequence[Mapping[str, Any]] | ToolSchemas | None) -> ToolSchemas:
    """The schemas to type calls against ``tools`` (see the module docstring)."""
    if isinstance(tools, ToolSchemas):
        return tools
    if type(tools) is not list and type(tools) is not tuple:
        return ToolSchemas(tools)  # None, or a sequence that may not read the same twice
    entry = _entries.get(id(tools))
    if entry is not None and entry.tools is tools and entry.holds(tools):
        schemas = entry.schemas
        if schemas is None:
            schemas = entry.schemas = ToolSchemas.compiled(tools)
        return schemas
    with _lock:
        if len(_entries) >= _KEPT:
            del _entries[next(iter(_entries))]  # the oldest
        _entries[id(tools)] = _Entry(tools)
    return ToolSchemas(tools)  # read lazily: the list may be used this once
