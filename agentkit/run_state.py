"""The state of a paused run: everything another process needs to resume it (JSON).

A run that stops for approval (``awaiting_approval``) returns a :class:`RunState`: the episode's
start record (so the resumed run writes to the same episode), the conversation so far, the
paused turn's calls with the pending ones named, counters (turns, record indices, usage, time)
and, in token mode, the token context of the model session (:class:`TokenContext`), so the
resumed session appends to exactly the ids the model saw. ``state.model_dump_json()`` and
``RunState.model_validate_json(text)`` carry it between processes.
"""

from __future__ import annotations

import base64
import sys
import zlib
from array import array
from typing import Any, Self

from pydantic import BaseModel, Field, model_validator

from agentkit.approvals import PendingCall
from agentkit.messages import Message, ToolCall
from agentkit.trajectory.records import EpisodeStart, Usage

STATE_VERSION = 1


class TokenContext(BaseModel):
    """A token-mode session's context, compact: the ids as zlib-compressed little-endian
    uint32 in base64 (``count`` checks the decoding), the messages they cover and the stop
    token that ended the last reply."""

    count: int
    ids_b64: str
    consumed: int
    last_stop: str | None = None

    @classmethod
    def encode(cls, exported: dict[str, Any]) -> TokenContext:
        ids = array("I", (int(i) for i in exported["ids"]))
        if sys.byteorder != "little":
            ids.byteswap()
        packed = base64.b64encode(zlib.compress(ids.tobytes(), 6)).decode("ascii")
        return cls(
            count=len(ids),
            ids_b64=packed,
            consumed=int(exported["consumed"]),
            last_stop=exported.get("last_stop"),
        )

    def ids(self) -> list[int]:
        ids = array("I")
        ids.frombytes(zlib.decompress(base64.b64decode(self.ids_b64)))
        if sys.byteorder != "little":
            ids.byteswap()
        if len(ids) != self.count:
            raise ValueError(f"the token context holds {len(ids)} ids, not {self.count}")
        return ids.tolist()

    def exported(self) -> dict[str, Any]:
        """The form the session's ``import_state`` takes."""
        return {"ids": self.ids(), "consumed": self.consumed, "last_stop": self.last_stop}


class RunState(BaseModel):
    """A run paused for approval. Resume it with ``Agent.resume(state, decisions)``."""

    version: int = STATE_VERSION
    episode: EpisodeStart
    messages: list[Message]
    thinking: bool
    # the paused turn: its calls in order (the pending ones among them) and the malformed
    # call markup the model wrote in it, answered after the calls
    turn: int
    calls: list[ToolCall]
    pending: list[PendingCall]
    malformed: list[str] = Field(default_factory=list)
    finish_reason: str = ""
    # counters that go on across the pause
    turns_done: int
    turns_left: int
    output_failures: int = 0
    next_step_index: int = 0
    calls_recorded: int = 0
    first_new_message: int = 0
    usage: Usage = Field(default_factory=Usage)
    elapsed_s: float = 0.0
    pauses: int = 1
    token_context: TokenContext | None = None

    @model_validator(mode="after")
    def _pending_are_calls(self) -> Self:
        ids = {call.id for call in self.calls}
        stray = [p.id for p in self.pending if p.id not in ids]
        if stray:
            raise ValueError(f"pending calls not in the paused turn: {', '.join(stray)}")
        if self.version != STATE_VERSION:
            raise ValueError(
                f"run state version {self.version} (this agentkit reads {STATE_VERSION})"
            )
        return self

    @property
    def episode_id(self) -> str:
        return self.episode.episode_id
