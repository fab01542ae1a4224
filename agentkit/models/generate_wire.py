"""SGLang's native ``/generate`` wire format, validated, streamed or not.

A reply counts only when it has what SGLang sends: ``text`` (a string), ``output_ids`` (a list
of token ids), ``meta_info`` with a ``finish_reason`` object carrying its ``type``, and
``meta_info.output_token_logprobs`` when log-probs were asked for. A stream's last chunk must be
such a reply (the transport checks ``[DONE]``). ``finish_reason.type == "abort"`` is the
server's abort. Anything else raises :class:`~agentkit.models.failures.ProtocolError`, which the
transport retries; a cut stream never passes for a finished turn.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agentkit.dialects import glm45
from agentkit.models.base import DeltaCallback, ModelDelta, StreamDeltaKind
from agentkit.models.failures import AbortedByServer, ProtocolError
from agentkit.models.transport import Events, StreamConsumer, _dumps

_EMPTY_OBJECT = b"{}"


def validate_generate_reply(data: dict[str, Any], *, logprobs: bool) -> dict[str, Any]:
    """A complete ``/generate`` reply (or a stream's last chunk), or :class:`ProtocolError`."""
    if not isinstance(data.get("text"), str):
        raise ProtocolError(f"the /generate reply has no text: {_short(data)}")
    ids = data.get("output_ids")
    if not isinstance(ids, list) or not _all_ints(ids):
        raise ProtocolError(f"the /generate reply has no output_ids list: {_short(data)}")
    meta = data.get("meta_info")
    if not isinstance(meta, dict):
        raise ProtocolError(f"the /generate reply has no meta_info: {_short(data)}")
    finish = meta.get("finish_reason")
    if finish is None:
        raise ProtocolError("the /generate reply has no finish_reason (cut off?)")
    if not isinstance(finish, dict) or not isinstance(finish.get("type"), str):
        raise ProtocolError(f"meta_info.finish_reason has no type: {_short(finish)}")
    if finish["type"] == "abort":
        raise AbortedByServer(finish.get("message") or finish)
    if logprobs and not isinstance(meta.get("output_token_logprobs"), list):
        raise ProtocolError("log-probs were asked for but meta_info has no output_token_logprobs")
    return data


def ids_json(ids: list[int]) -> bytes:
    """The JSON of a list of token ids without its brackets (``1,2,3``), encoded as the
    transport encodes a body (:func:`agentkit.models.transport._dumps`)."""
    return _dumps(ids)[1:-1]


def joined_ids(head: bytes, tail: bytes) -> bytes:
    """Two :func:`ids_json` pieces as the piece of their concatenated lists."""
    return head + b"," + tail if head and tail else head or tail


def generate_body(fields: dict[str, Any], input_ids: bytes) -> bytes:
    """A ``/generate`` body as JSON: ``input_ids`` (the :func:`ids_json` of the ids, kept from
    call to call so that only new ids are encoded) and the other ``fields`` (any
    ``"input_ids"`` among them is left out). The same JSON value as encoding
    ``{**fields, "input_ids": ids}`` whole, with ``input_ids`` first."""
    rest = _dumps({k: v for k, v in fields.items() if k != "input_ids"})
    head = b'{"input_ids":[' + input_ids + b"]"
    return head + b"}" if rest == _EMPTY_OBJECT else head + b"," + rest[1:]


def _all_ints(values: list[Any]) -> bool:
    """Every item a plain int (not a bool): one pass over the item types, in C."""
    return (
        not values
        or set(map(type, values)) == _INT_ONLY
        or all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    )


_INT_ONLY = {int}


def generate_stream_consumer(
    on_delta: DeltaCallback,
    tools: Sequence[Mapping[str, Any]] | glm45.ToolSchemas | None,
    *,
    thinking: bool,
    logprobs: bool,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> StreamConsumer[dict[str, Any]]:
    """Read one streamed ``/generate`` attempt (cumulative ``text``), forwarding parsed deltas;
    returns the last chunk, validated as a complete reply (and by ``check``, which raises)."""

    async def consume(events: Events) -> dict[str, Any]:
        parser = glm45.StreamParser(tools or None, thinking=thinking)
        seen = 0
        last: dict[str, Any] | None = None
        async for chunk in events:
            text = chunk.get("text", "")
            if not isinstance(text, str):
                raise ProtocolError(f"a /generate chunk's text is not a string: {_short(chunk)}")
            last = chunk
            piece, seen = text[seen:], len(text)
            for delta in parser.feed(piece):
                await forward_glm_delta(delta, on_delta)
        if last is None:
            raise ProtocolError("the /generate stream had no chunks")
        reply = validate_generate_reply(last, logprobs=logprobs)
        if check is not None:
            check(reply)
        for delta in parser.close():
            await forward_glm_delta(delta, on_delta)
        return reply

    return consume


async def forward_glm_delta(delta: glm45.StreamDelta, on_delta: DeltaCallback) -> None:
    if isinstance(delta, glm45.ReasoningDelta):
        await on_delta(ModelDelta(kind=StreamDeltaKind.REASONING, text=delta.text))
    elif isinstance(delta, glm45.ContentDelta):
        await on_delta(ModelDelta(kind=StreamDeltaKind.CONTENT, text=delta.text))
    elif isinstance(delta, glm45.ToolCallStart):
        await on_delta(
            ModelDelta(kind=StreamDeltaKind.TOOL_CALL_START, index=delta.index, name=delta.name)
        )
    elif isinstance(delta, glm45.ToolCallArgumentsDelta):
        await on_delta(
            ModelDelta(kind=StreamDeltaKind.TOOL_CALL_ARGUMENTS, index=delta.index, text=delta.text)
        )


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 300 else text[:300] + "..."
