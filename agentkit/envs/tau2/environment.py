"""One tau2 environment: an agent toolkit, an optional user toolkit (dual control), and the
domain's ``sync`` hook that runs after every tool call (telecom copies the line's state onto the
phone there).

:meth:`Tau2Environment.respond` is tau2's ``get_response``: run the call for its requestor, sync,
and return the observation text with an error flag. :meth:`make_tool_call` runs a call without
the sync, which is how tau2 builds the gold state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .tasks import EnvAssertion, EnvFunctionCall, Tau2Task
from .toolkit import Requestor, Toolkit, observation_text

SyncHook = Callable[["Tau2Environment"], None]


@dataclass(frozen=True)
class Observation:
    content: str
    error: bool


class Tau2Environment:
    def __init__(
        self, tools: Toolkit, user_tools: Toolkit | None = None, sync: SyncHook | None = None
    ) -> None:
        self.tools = tools
        self.user_tools = user_tools
        self._sync = sync
        self.sync()

    @property
    def has_sync(self) -> bool:
        return self._sync is not None

    def sync(self) -> None:
        if self._sync is not None:
            for kit in (self.tools, self.user_tools):
                if kit is not None:
                    kit.invalidate()
            self._sync(self)

    def toolkit(self, requestor: Requestor) -> Toolkit:
        if requestor == "assistant":
            return self.tools
        if self.user_tools is None:
            raise ValueError("User tools not available")
        return self.user_tools

    def has_tool(self, name: str) -> bool:
        return self.tools.has_tool(name) or (
            self.user_tools is not None and self.user_tools.has_tool(name)
        )

    def mutates(self, name: str) -> bool:
        for kit in (self.tools, self.user_tools):
            if kit is not None and kit.has_tool(name):
                return kit.mutates(name)
        return True

    def make_tool_call(
        self, name: str, arguments: Mapping[str, Any], requestor: Requestor = "assistant"
    ) -> Any:
        return self.toolkit(requestor).use_tool(name, arguments)

    def respond(
        self, name: str, arguments: Mapping[str, Any], requestor: Requestor = "assistant"
    ) -> Observation:
        try:
            result = self.make_tool_call(name, arguments, requestor)
            self.sync()
        except Exception as exc:
            return Observation(f"Error: {exc}", True)
        return Observation(observation_text(result), False)

    def run_function(self, call: EnvFunctionCall) -> Any:
        result = self.toolkit(call.env_type).call_function(call.func_name, call.arguments)
        self.sync()
        return result

    def check(self, assertion: EnvAssertion) -> bool:
        """An environment assertion on this (predicted) state."""
        result = self.run_function(assertion)
        if not isinstance(result, bool):
            raise ValueError(f"Function {assertion.func_name} returned {type(result)}")
        return result == assertion.assert_value

    def apply_initial_state(self, task: Tau2Task) -> None:
        """tau2's ``set_state``: merge the initialisation data, run the initialisation actions
        (each followed by a sync), re-run the mutating calls of the message history, sync."""
        state = task.initial_state
        if state is not None:
            data = state.initialization_data
            if data is not None and data.agent_data is not None:
                self.tools.update_db(data.agent_data)
            if data is not None and data.user_data is not None:
                self.toolkit("user").update_db(data.user_data)
            for action in state.initialization_actions or []:
                self.run_function(action)
            for name, arguments, requestor in history_calls(state.message_history or []):
                if self.has_tool(name) and self.mutates(name):
                    self.respond(name, arguments, requestor)
        self.sync()

    def db_hash(self) -> str:
        return self.tools.db_hash()

    def user_db_hash(self) -> str | None:
        return None if self.user_tools is None else self.user_tools.db_hash()


def history_calls(messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], Requestor]]:
    """Tool calls of assistant and user messages in a tau2 message history, in order."""
    calls: list[tuple[str, dict[str, Any], Requestor]] = []
    for message in messages:
        role = message.get("role")
        if role not in ("assistant", "user"):
            continue
        for call in message.get("tool_calls") or []:
            requestor: Requestor = "user" if call.get("requestor", role) == "user" else "assistant"
            calls.append((str(call["name"]), dict(call.get("arguments") or {}), requestor))
    return calls
