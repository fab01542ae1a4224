"""The chat-completions wire format: validated replies, streamed or not, and tool calls.

A reply counts only when it is complete: a non-streamed one needs ``choices[0]`` with a
``message`` object and a ``finish_reason``; a streamed one needs a ``finish_reason`` in some chunk
(the transport checks ``[DONE]``). Anything else raises
:class:`~agentkit.models.failures.ProtocolError`, which the transport retries. A missing finish
reason never defaults to ``"stop"``. A finish reason of ``"abort"`` is the server's abort.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from itertools import chain
from operator import is_
from typing import Any, NamedTuple

from agentkit.messages import (
    AssistantMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UserMessage,
    assemble,
    message_edits,
    new_call_id,
    share_fields_set,
    shared_set,
)
from agentkit.models.base import DeltaCallback, ModelDelta, StreamDeltaKind
from agentkit.models.client_markup import MarkupStream
from agentkit.models.failures import AbortedByServer, ProtocolError
from agentkit.models.transport import Events, StreamConsumer, _dumps


class ChatReply(NamedTuple):
    message: dict[str, Any]
    usage: dict[str, Any]
    finish: str
    matched: Any
    spec_verify_ct: int | None


def validate_chat_reply(data: dict[str, Any]) -> ChatReply:
    """A non-streamed ``/v1/chat/completions`` reply, or :class:`ProtocolError`."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ProtocolError(f"the reply has no choices: {_short(data)}")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise ProtocolError(f"choices[0] is not an object: {_short(choice)}")
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ProtocolError(f"choices[0] has no message object: {_short(choice)}")
    finish = _finish(choice)
    if finish is None:
        raise ProtocolError(f"choices[0] has no finish_reason: {_short(choice)}")
    usage = data.get("usage")
    return ChatReply(
        message,
        usage if isinstance(usage, dict) else {},
        finish,
        choice.get("matched_stop"),
        spec_verify_ct(choice.get("meta_info"), data.get("sglext")),
    )


def _finish(choice: dict[str, Any]) -> str | None:
    finish = choice.get("finish_reason")
    if finish is None:
        return None
    if not isinstance(finish, str) or not finish:
        raise ProtocolError(f"finish_reason is not a string: {finish!r}")
    if finish == "abort":
        raise AbortedByServer(choice.get("matched_stop") or "finish_reason abort")
    return sys.intern(finish)  # a handful of values: one string each, not one per record


class _StreamState:
    """What one streamed attempt has accumulated."""

    def __init__(self, markup: MarkupStream | None) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.matched: Any = None
        self.usage: dict[str, Any] = {}
        self.spec: int | None = None
        self.markup = markup


def chat_stream_consumer(
    on_delta: DeltaCallback,
    client_parser: str | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> StreamConsumer[ChatReply]:
    """Read one streamed attempt into a :class:`ChatReply`, forwarding deltas as they come.

    With ``client_parser``, content goes through the dialect's stream parser first, so raw
    markup never reaches a content delta (a server that parsed tool calls itself sends none).
    """

    async def consume(events: Events) -> ChatReply:
        state = _StreamState(MarkupStream(client_parser, tools) if client_parser else None)
        async for chunk in events:
            await _chunk(state, chunk, on_delta)
        if state.markup is not None:
            for delta in state.markup.close():
                await on_delta(delta)
        if state.finish is None:
            raise ProtocolError("the stream ended without a finish_reason")
        message: dict[str, Any] = {
            "content": "".join(state.content),
            "reasoning_content": "".join(state.reasoning) or None,
            "tool_calls": [
                {
                    "id": slot["id"],
                    "type": "function",
                    "function": {"name": slot["name"], "arguments": slot["arguments"]},
                }
                for _, slot in sorted(state.calls.items())
            ],
        }
        return ChatReply(message, state.usage, state.finish, state.matched, state.spec)

    return consume


async def _chunk(state: _StreamState, chunk: dict[str, Any], on_delta: DeltaCallback) -> None:
    if isinstance(chunk.get("usage"), dict):
        state.usage = chunk["usage"]
    if chunk.get("sglext"):
        state.spec = spec_verify_ct(None, chunk["sglext"]) or state.spec
    choices = chunk.get("choices") or []
    if not isinstance(choices, list):
        raise ProtocolError(f"a stream chunk's choices is not a list: {_short(chunk)}")
    for choice in choices:
        if not isinstance(choice, dict):
            raise ProtocolError(f"a stream choice is not an object: {_short(choice)}")
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise ProtocolError(f"a stream delta is not an object: {_short(choice)}")
        await _delta(state, delta, on_delta)
        if choice.get("meta_info"):
            state.spec = spec_verify_ct(choice["meta_info"], None) or state.spec
        finish = _finish(choice)
        if finish is not None:
            state.finish = finish
            state.matched = choice.get("matched_stop")


async def _delta(state: _StreamState, delta: dict[str, Any], on_delta: DeltaCallback) -> None:
    reasoning = delta.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        state.reasoning.append(reasoning)
        await on_delta(ModelDelta(kind=StreamDeltaKind.REASONING, text=reasoning))
    content = delta.get("content")
    if isinstance(content, str) and content:
        state.content.append(content)
        if state.markup is None:
            await on_delta(ModelDelta(kind=StreamDeltaKind.CONTENT, text=content))
        else:
            for piece in state.markup.feed(content):
                await on_delta(piece)
    tool_calls = delta.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise ProtocolError(f"delta.tool_calls is not a list: {_short(delta)}")
    for tc in tool_calls:
        if not isinstance(tc, dict):
            raise ProtocolError(f"a streamed tool call is not an object: {_short(tc)}")
        index = tc.get("index", 0)
        if not isinstance(index, int):
            raise ProtocolError(f"a streamed tool call has no integer index: {_short(tc)}")
        slot = state.calls.setdefault(index, {"id": None, "name": "", "arguments": ""})
        fn = tc.get("function") or {}
        if tc.get("id"):
            slot["id"] = tc["id"]
        if isinstance(fn, dict) and fn.get("name"):
            slot["name"] = str(fn["name"])
            await on_delta(
                ModelDelta(kind=StreamDeltaKind.TOOL_CALL_START, index=index, name=slot["name"])
            )
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str) and fn["arguments"]:
            slot["arguments"] += fn["arguments"]
            await on_delta(
                ModelDelta(
                    kind=StreamDeltaKind.TOOL_CALL_ARGUMENTS, index=index, text=fn["arguments"]
                )
            )


def tool_calls_from_wire(raw_calls: Any) -> tuple[list[ToolCall], list[str]]:
    """The server's ``tool_calls`` as :class:`ToolCall` s. A call whose arguments are not a JSON
    object keeps the raw text in ``raw_arguments`` and the real error in ``parse_error``; its wire
    form is then ``{}`` so the server accepts the turn when it is sent back."""
    calls: list[ToolCall] = []
    problems: list[str] = []
    if not isinstance(raw_calls, list):
        return calls, problems
    for raw in raw_calls:
        if not isinstance(raw, dict):
            problems.append(f"malformed_call: a tool call is not an object: {_short(raw)}")
            continue
        fn: dict[str, Any] = raw["function"] if isinstance(raw.get("function"), dict) else {}
        name = sys.intern(str(fn.get("name") or ""))  # the tools' names: one string each
        arguments, text, error = _arguments(fn.get("arguments"))
        if not name:
            error = "the tool call has no function name" + (f"; {error}" if error else "")
        if error:
            problems.append(f"malformed_arguments: {name or '?'}: {error}")
        call_id = str(raw.get("id") or new_call_id())
        if error is None and type(fn.get("arguments")) in _TEXT_OR_NONE:
            # assembled: strings, and arguments parsed from JSON text here (a dict of its own,
            # str keys) or a fresh {}, in field order (tests/models/test_call_path_tool_calls.py)
            values = {
                "id": call_id,
                "name": name,
                "arguments": arguments,
                "raw_arguments": text,
                "parse_error": None,
            }
            calls.append(assemble(ToolCall, values, _CALL_SET or set(_CALL_GIVEN)))
            continue
        # ``parse_error`` only when there is one: the same call, and a smaller fields-set
        call = (
            ToolCall(id=call_id, name=name, arguments=arguments, raw_arguments=text)
            if error is None
            else ToolCall(
                id=call_id, name=name, arguments=arguments, raw_arguments=text, parse_error=error
            )
        )
        share_fields_set(call)  # one set for the calls given the same fields
        calls.append(call)
    return calls, problems


_TEXT_OR_NONE = (str, type(None))
_CALL_GIVEN = ("id", "name", "arguments", "raw_arguments")
_CALL_SET = shared_set(_CALL_GIVEN)


def _arguments(value: Any) -> tuple[dict[str, Any], str | None, str | None]:
    """``(arguments, raw text, parse error)`` of a call's ``function.arguments``."""
    if isinstance(value, dict):
        return value, json.dumps(value, ensure_ascii=False), None
    if value is None:
        return {}, None, None
    if not isinstance(value, str):
        return {}, json.dumps(value), f"arguments must be a JSON object, got {type(value).__name__}"
    if not value.strip():
        return {}, None, None
    try:
        if value.startswith("\ufeff"):  # what json.loads says of a str with a BOM
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", value, 0)
        parsed = _STRICT_JSON.decode(value)
    except json.JSONDecodeError as exc:
        return {}, value, f"invalid JSON in arguments: {exc}"
    except ValueError as exc:
        return {}, value, f"invalid arguments: {exc}"
    if not isinstance(parsed, dict):
        return {}, value, f"arguments must be a JSON object, got {type(parsed).__name__}"
    return parsed, value, None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text} is out of range")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} is given twice")
        seen.add(key)
    return out  # pragma: no cover - a repeated key is always found above


# ``json.loads`` with these hooks builds a new decoder per call; one shared decoder is the same
# parse (strict JSON: no NaN/Infinity, finite floats, every key once) without that cost.
_STRICT_JSON = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys
)


def spec_verify_ct(meta_info: Any, sglext: Any) -> int | None:
    """``spec_verify_ct`` from ``choices[].meta_info`` (``return_meta_info``) or
    ``sglext.spec_tokens_details`` (``return_spec_tokens_details``), where the server sent it."""
    details = sglext.get("spec_tokens_details") if isinstance(sglext, dict) else None
    for holder in (meta_info, details):
        if isinstance(holder, dict):
            value = holder.get("spec_verify_ct")
            if isinstance(value, int) and value > 0:
                return value
    return None


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 300 else text[:300] + "..."


class WireHistory:
    """The JSON of a conversation's messages as sent (``to_openai``, encoded as the transport
    encodes a body), kept from call to call so that each message is encoded once.

    What is kept is the JSON of the history's first messages, the "stable" ones, as one
    exact-size ``bytes``. It is used again only while it still describes the history: the
    same message objects first, in the same order, no message field assigned anywhere since
    (:func:`~agentkit.messages.message_edits`: a message's fields are strings, so only an
    assignment changes them), and the assistants' tool-call lists holding the same calls
    (frozen). Anything else (a message replaced, inserted or removed, a field assigned, a call
    added, dropped or moved, a history cut or set anew) has the whole history encoded afresh.
    A message whose wire form could change unseen (another class, or a tool call sent from
    its ``arguments`` mapping: no raw text, or a parse error) ends the stable part: it and the
    messages after it are encoded at every call."""

    __slots__ = ("_calls", "_edits", "_json", "_lens", "_lists", "_messages")

    def __init__(self) -> None:
        self._messages: list[Message] = []  # the stable messages
        self._json = b""  # their JSON, comma-separated
        self._edits = -1  # message_edits() when it was made
        self._lists: list[list[ToolCall]] = []  # the stable assistants' tool_calls lists
        self._lens: list[int] = []  # their lengths
        self._calls: list[ToolCall] = []  # their calls, in order

    def encoded(self, messages: list[Message]) -> bytes | None:
        """The JSON array of ``to_openai(messages)``; ``None`` (and nothing kept) when one of
        them will not encode, for the caller to send them as a dict (the transport decides)."""
        edits = message_edits()  # before reading any message: a later change is seen next time
        kept = self._messages
        had = len(kept)
        if not (
            edits == self._edits
            and len(messages) >= had
            and all(map(is_, kept, messages))
            and list(map(len, self._lists)) == self._lens
            and list(chain.from_iterable(self._lists)) == self._calls
        ):
            self._reset()
            had = 0
        self._edits = edits
        try:
            return self._extended(messages, had)
        except Exception:  # e.g. a lone surrogate: the caller's dict path fails as it fails
            self._reset()
            return None

    def _extended(self, messages: list[Message], had: int) -> bytes:
        """Keep ``messages[had:]`` while they are stable; the JSON array of all of them."""
        kept, pieces = self._messages, [self._json] if had else []
        stable = True
        for message in messages[had:]:
            if stable and not _stable(message):
                stable = False
                if len(kept) > had:  # stable ones were added before it
                    self._json = _exact(pieces)
            pieces.append(_dumps(message.to_openai()))
            if stable:
                kept.append(message)
                if type(message) is AssistantMessage:
                    calls = message.tool_calls
                    self._lists.append(calls)
                    self._lens.append(len(calls))
                    self._calls.extend(calls)
        if stable and len(kept) > had:
            self._json = _exact(pieces)
            return b"[" + self._json + b"]"
        return b"[" + b",".join(pieces) + b"]"

    def _reset(self) -> None:
        del self._messages[:], self._lists[:], self._lens[:], self._calls[:]
        self._json = b""
        self._edits = -1


_PLAIN_MESSAGES = (SystemMessage, UserMessage, ToolMessage)


def _exact(pieces: list[bytes]) -> bytes:
    """``pieces`` comma-joined in a ``bytes`` of its own size (orjson's are ~1 KiB at least,
    and a join of one piece is that piece)."""
    joined = b",".join(pieces)
    return memoryview(joined).tobytes() if len(pieces) == 1 else joined


def _stable(message: Message) -> bool:
    """Whether a message's wire form changes only by an assignment or a change of its list of
    tool calls: one of the four classes, every tool call a ToolCall sent as its raw text."""
    kind = type(message)
    if kind in _PLAIN_MESSAGES:
        return True
    if kind is not AssistantMessage:
        return False
    for call in message.tool_calls:  # type: ignore[union-attr]
        if type(call) is not ToolCall or call.raw_arguments is None or call.parse_error is not None:
            return False
    return True
