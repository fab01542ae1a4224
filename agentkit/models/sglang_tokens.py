"""Token mode: client-side rendering and SGLang's native ``/generate`` with token ids.

The session keeps the context as token ids and only ever appends: the ``input_ids`` of call t+1
are exactly the ``input_ids`` + ``output_ids`` of call t followed by the tokens of the new messages
(tool results, user turns) and the generation prompt. History is never re-rendered, so the server's
prefix cache hits and the recorded tokens are the ones the model saw, ready for RL.
"""

from __future__ import annotations

import itertools
import operator
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from agentkit.dialects import glm45
from agentkit.dialects.glm45.tokens import PROMPT_PREFIX
from agentkit.messages import (
    AssistantMessage,
    SharedFieldsSet,
    ToolCall,
    ToolMessage,
    UserMessage,
    assemble,
    assembled_assistant,
)
from agentkit.models.base import (
    DeltaCallback,
    ModelDelta,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    StreamDeltaKind,
)
from agentkit.models.client_markup import calls_from_parsed
from agentkit.models.generate_wire import (
    generate_body,
    generate_stream_consumer,
    ids_json,
    joined_ids,
    validate_generate_reply,
)
from agentkit.models.recording import (
    CallClock,
    CallInput,
    CallUsage,
    ModelReply,
    TokenOutput,
    failed_call_record,
    recorded_call,
    response_of,
)
from agentkit.models.replay_wire import (
    ENGINE_META_EXCLUDED,
    ReplayRequest,
    check_replay,
    routed_experts,
    sampling_mask,
)
from agentkit.models.transport import Body, RetryPolicy, Transport
from agentkit.models.urls import ROUTING_KEY_HEADER, ServerPool
from agentkit.tokenizer import HFTokenizersTokenizer, SegmentCache, Tokenizer, load_tokenizer
from agentkit.trajectory.records import Attempt, TokenSegment, TokenSource

_TEMPLATE_CACHE_SIZE = 64
_TRUSTED_MATCHED = (int, str, type(None))
# the reply's fields given by _reply (attempts too when it has them)
_REPLY_GIVEN = frozenset(
    (
        "message",
        "server",
        "output_text",
        "finish_reason",
        "loop_finish_reason",
        "matched_stop",
        "tokens",
        "usage",
        "engine_meta",
        "problems",
        "malformed_calls",
    )
)
_FIRST = operator.itemgetter(0)
_NO_REPLAY = ReplayRequest()
# validate_generate_reply with log-probs asked for (True) or not: the check of a reply when no
# replay data is asked for (check_replay has nothing to check then)
_PLAIN_CHECKS: dict[bool, Callable[[dict[str, Any]], dict[str, Any]]] = {
    flag: partial(validate_generate_reply, logprobs=flag) for flag in (True, False)
}


def _engine_fields(
    meta: dict[str, Any],
    want: ReplayRequest,
    output_ids: list[int],
    logprobs: bool,
    input_len: int,
) -> tuple[TokenOutput, CallUsage, dict[str, Any]]:
    """The reply fields taken from ``meta_info``: the token output (the log-probs and the
    replay data that was asked for), the counts (speculative decoding, weight version) and the
    rest of the engine's meta."""
    output_len = len(output_ids)
    # each entry is [logprob, token id, text]: the first of each, as floats
    token_logprobs = list(map(float, map(_FIRST, meta.get("output_token_logprobs") or ())))
    tokens = (
        TokenOutput(
            output_ids=output_ids,
            output_logprobs=token_logprobs if logprobs else None,
            routed_experts=(
                routed_experts(meta, want, input_len, output_len) if want.routed_experts else None
            ),
            sampling_mask=sampling_mask(meta, output_len) if want.sampling_mask else None,
        )
        if want.routed_experts or want.sampling_mask
        # ids checked to be ints (validate_generate_reply; JSON gives plain ones), log-probs
        # made floats here
        else _token_output(output_ids, token_logprobs if logprobs else None)
    )
    # the rest of meta_info, in its order: a copy without the excluded keys it has
    engine_meta = dict(meta)
    for key in ENGINE_META_EXCLUDED:
        engine_meta.pop(key, None)
    return tokens, _usage(meta, input_len, output_len), engine_meta


_COUNT_TYPES = frozenset((int, type(None)))
_VERSION_TYPES = frozenset((str, type(None)))
_USAGE_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "spec_verify_ct",
    "accept_length",
    "weight_version",
)


def _usage(meta: dict[str, Any], input_len: int, output_len: int) -> CallUsage:
    """The counts of ``meta_info``: assembled as they are when each has its field's type
    exactly (a plain int or none, the weight version a string or none: what JSON gives), else
    validated (coerced or refused as validation does). Every field given, as before."""
    spec = meta.get("spec_verify_ct")
    completion = meta.get("completion_tokens", output_len)
    speculative = isinstance(spec, int) and spec > 0
    prompt = meta.get("prompt_tokens", input_len)
    cached = meta.get("cached_tokens")
    version = meta.get("weight_version")
    accept = completion / spec if speculative else None
    if (
        type(prompt) in _COUNT_TYPES
        and type(completion) in _COUNT_TYPES
        and type(cached) in _COUNT_TYPES
        and type(version) in _VERSION_TYPES
        and (not speculative or (type(spec) is int and type(accept) is float))
    ):
        data = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cached_tokens": cached,
            "spec_verify_ct": spec if speculative else None,
            "accept_length": accept,
            "weight_version": version,
        }
        return assemble(CallUsage, data, set(_USAGE_FIELDS))
    return CallUsage(
        weight_version=version,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        spec_verify_ct=spec if speculative else None,
        accept_length=accept,
    )


# Built without validation from values of exactly the field types (messages.assemble: every
# field in field order; the names given as the fields set): what records.trusted makes, without
# its per-call shape lookup. Each equal to validated construction: tests/models/test_token_trusted.py
_CALL_FIELDS = SharedFieldsSet(("id", "name", "arguments"))


def _tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> ToolCall:
    """``ToolCall(id=call_id, name=name, arguments=arguments)``; ``arguments`` is the call's."""
    data = {
        "id": call_id,
        "name": name,
        "arguments": arguments,
        "raw_arguments": None,
        "parse_error": None,
    }
    return assemble(ToolCall, data, _CALL_FIELDS)


def _segment(source: TokenSource, ids: list[int]) -> TokenSegment:
    """``TokenSegment(source=source, ids=ids)`` for plain-int ``ids`` in a list of its own."""
    return assemble(
        TokenSegment, {"source": source, "ids": ids, "step_index": None}, {"source", "ids"}
    )


def _token_output(ids: list[int], logprobs: list[float] | None) -> TokenOutput:
    """``TokenOutput`` of plain-int ``ids`` and float ``logprobs``, no replay data (all four
    fields given, as before)."""
    data = {
        "output_ids": ids,
        "output_logprobs": logprobs,
        "routed_experts": None,
        "sampling_mask": None,
    }
    return assemble(
        TokenOutput, data, {"output_ids", "output_logprobs", "routed_experts", "sampling_mask"}
    )


def _calls(
    plain: glm45.Plain, text: str, schemas: glm45.ToolSchemas | None, thinking: bool
) -> tuple[list[ToolCall], list[str]]:
    """``calls_from_parsed`` of the parse of ``text`` whose plain values are ``plain``: a turn
    with no problems (nearly all) gives its calls as they are, each with a new id (``call_``
    and 24 hex digits: the process's random prefix and a count); one with problems is parsed
    again and read by ``calls_from_parsed``."""
    if plain[3]:
        return calls_from_parsed(glm45.parse(text, schemas, thinking=thinking))
    # the parser's names and arguments (str keys) are typed; each dict is this parse's own
    # (glm45.parse_plain), so the call's own
    return [
        _tool_call(f"call_{_RID_PREFIX}{next(_CALL_COUNTER):016x}", name, arguments)
        for name, arguments, _ in plain[2]
    ], []


# request and call ids: unique in this process by the counters, across processes by the random
# prefix (drawn again in a forked child, which would otherwise repeat its parent's ids)
_RID_PREFIX = os.urandom(4).hex()
_RID_COUNTER = itertools.count()
_CALL_COUNTER = itertools.count()


def _new_rid_prefix() -> None:
    global _RID_PREFIX
    _RID_PREFIX = os.urandom(4).hex()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_new_rid_prefix)


class _ToolList:
    """What is kept of one tool list: the list, its items (to see one replaced), the parser's
    schemas, the rendered tools block and the prompt's start with it, each made when first
    asked for."""

    __slots__ = ("block", "head", "items", "schemas", "tools")

    def __init__(self, tools: Sequence[Mapping[str, Any]]) -> None:
        self.tools = tools
        self.items = tuple(tools)
        self.schemas: glm45.ToolSchemas | None = None
        self.block: str | None = None
        self.head: str | None = None


class SGLangTokens:
    """A token-mode backend: GLM-4.5 template + tokenizer here, ``/generate`` on the server.
    ``base_url``: one server or a list; a trailing ``/v1`` is dropped, an invalid URL raises
    ``ValueError`` here.

    ``routed_experts``: ask for the MoE routing of every position (slime's rollout routing
    replay; the server needs ``--enable-return-routed-experts``, ``agentkit serve
    --routed-experts``); ``moe_layout`` = ``(layers, top_k)`` shapes it per layer.
    ``sampling_mask``: ask for the token ids top-p/top-k kept at each generated token. Both are
    recorded per call (:mod:`agentkit.models.replay_wire`)."""

    mode = "tokens"

    def __init__(
        self,
        base_url: str | list[str],
        tokenizer: Tokenizer | str | Path,
        *,
        model: str = "default",
        settings: ModelSettings | None = None,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        return_logprob: bool = True,
        max_concurrency_per_server: int | None = None,
        routed_experts: bool = False,
        moe_layout: tuple[int, int] | None = None,
        sampling_mask: bool = False,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError("model must be a non-empty string (the served model name)")
        self.name = model
        self.servers = ServerPool(base_url, max_concurrency_per_server=max_concurrency_per_server)
        self.tokenizer = (
            tokenizer if not isinstance(tokenizer, str | Path) else load_tokenizer(tokenizer)
        )
        self.settings = settings or ModelSettings()
        self.transport = transport or Transport(retry)
        self.return_logprob = return_logprob
        self.routed_experts = routed_experts
        self.moe_layout = moe_layout
        self.sampling_mask = sampling_mask
        self.stop_token_ids = list(glm45.STOP_TOKEN_IDS)
        self._stop_by_id = dict(zip(glm45.STOP_TOKEN_IDS, glm45.STOP_TOKENS, strict=True))
        self._template_ids: dict[str, list[int]] = {}
        self._encoder: SegmentCache | None = None
        self._tool_lists: dict[int, _ToolList] = {}
        # the last sampling_params built: for these settings and stop ids
        self._sampling: tuple[ModelSettings, list[int], dict[str, Any]] | None = None

    def encoder(self) -> SegmentCache:
        """The tokenizer with the ids of repeated text (system prompt, tool block) kept."""
        if self._encoder is None or self._encoder.tokenizer is not self.tokenizer:
            self._encoder = SegmentCache(self.tokenizer)
        return self._encoder

    def template_ids(self, text: str) -> list[int]:
        """The ids of a template text (the generation prompt): encoded once, then a copy of
        those ids each time, so every record owns its list."""
        ids = self._template_ids.get(text)
        if ids is None:
            if len(self._template_ids) >= _TEMPLATE_CACHE_SIZE:
                self._template_ids.clear()
            ids = self._template_ids[text] = self.tokenizer.encode(text)
        return list(ids)

    def tool_schemas(self, tools: Sequence[Mapping[str, Any]] | None) -> glm45.ToolSchemas | None:
        """The parser's view of ``tools``, compiled once per tool list (an agent sends the same
        list object on every call): kept while the list is the same object holding the very
        same tool objects (one added, removed or replaced in place is read afresh)."""
        if not tools:
            return None
        entry = self._tool_list(tools)
        if entry.schemas is None:
            entry.schemas = glm45.ToolSchemas.compiled(tools)
        return entry.schemas

    def tools_text(self, tools: Sequence[Mapping[str, Any]] | None) -> str:
        """``glm45.tools_block(tools)``, rendered once per tool list as :meth:`tool_schemas`
        compiles it (the first prompt of every episode shows the same tools)."""
        if not tools:
            return ""
        entry = self._tool_list(tools)
        if entry.block is None:
            entry.block = glm45.tools_block(tools)
        return entry.block

    def prompt_head(self, tools: Sequence[Mapping[str, Any]] | None) -> str:
        """The fixed start of a first prompt: ``PROMPT_PREFIX`` and :meth:`tools_text`, one
        string per tool list (the same object each time, whose ids the encoder keeps)."""
        if not tools:
            return PROMPT_PREFIX
        entry = self._tool_list(tools)
        if entry.head is None:
            entry.head = PROMPT_PREFIX + self.tools_text(tools)
        return entry.head

    def _tool_list(self, tools: Sequence[Mapping[str, Any]]) -> _ToolList:
        cached = self._tool_lists.get(id(tools))
        if (
            cached is not None
            and cached.tools is tools
            and len(cached.items) == len(tools)
            and all(map(operator.is_, cached.items, tools))
        ):
            return cached
        if len(self._tool_lists) >= _TEMPLATE_CACHE_SIZE:
            self._tool_lists.clear()
        entry = self._tool_lists[id(tools)] = _ToolList(tools)
        return entry

    def sampling_params(self, settings: ModelSettings) -> dict[str, Any]:
        """The ``sampling_params`` of a call with ``settings``: a new dict each call (the
        record's own), copied from the last one built when the settings object and the stop
        ids are the same ones and there are no ``extra`` settings (a dict that could have
        changed in place: built afresh)."""
        kept = self._sampling
        stop_ids = self.stop_token_ids
        if kept is not None and kept[0] is settings and kept[1] is stop_ids and not settings.extra:
            return kept[2].copy()
        sampling: dict[str, Any] = {
            "max_new_tokens": settings.max_tokens,
            "stop_token_ids": stop_ids,
            "skip_special_tokens": False,
            "no_stop_trim": True,
        }
        for key in ("temperature", "top_p", "top_k"):
            value = getattr(settings, key)
            if value is not None:
                sampling[key] = value
        if settings.seed is not None:
            sampling["sampling_seed"] = settings.seed
        sampling.update(settings.extra)
        self._sampling = (settings, stop_ids, sampling.copy())
        return sampling

    def session(self, *, routing_key: str | None = None) -> TokenSession:
        return TokenSession(self, routing_key or uuid.uuid4().hex)

    async def aclose(self) -> None:
        await self.transport.aclose()


class ContextError(Exception):
    """The conversation changed in a way an append-only token context cannot follow."""


class TokenSession:
    """One conversation's token context. ``ids`` is replaced by each call (and by
    :meth:`import_state`), never changed in place: the JSON of the ids already sent is kept
    for the list object it was made from, so each request encodes only its new ids."""

    def __init__(self, model: SGLangTokens, routing_key: str) -> None:
        self.model = model
        self.routing_key = routing_key
        # SGLang's router keeps every request with this key on one server behind it
        self.headers: dict[str, str] | None = {ROUTING_KEY_HEADER: routing_key}
        self.ids: list[int] = []
        self.consumed = 0
        self.last_stop: str | None = None
        self.thinking: bool | None = None
        # ids_json(self.ids), kept for that very list object at that length
        self._ids_json = b""
        self._ids_json_of: tuple[list[int], int] | None = None

    # --- pause and resume (agentkit.run_state) --------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """The context this session holds, for a paused run to continue it in another process:
        the token ids, how many messages they cover and the stop token that ended them."""
        return {"ids": list(self.ids), "consumed": self.consumed, "last_stop": self.last_stop}

    def import_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`export_state`: the next call appends to exactly these ids."""
        self.ids = [int(i) for i in state["ids"]]
        self.consumed = int(state["consumed"])
        stop = state.get("last_stop")
        self.last_stop = str(stop) if stop is not None else None

    # --- building the context ------------------------------------------------------------------

    def _encode(self, text: str, source: TokenSource) -> TokenSegment:
        model = self.model
        if source is TokenSource.TEMPLATE:
            ids = model.template_ids(text)
        elif source is TokenSource.PROMPT:  # system prompt and tool block: the same each episode
            ids = model.encoder().encode(text)
        else:  # a tool's result, a user's turn: seldom seen twice, not worth keeping, but the
            # tags around it are known: only the text between them reaches the tokenizer
            ids = model.encoder().encode(text, keep=False)
        return self._segment_of(source, ids)

    def _segment_of(self, source: TokenSource, ids: list[int]) -> TokenSegment:
        if type(self.model.tokenizer) is HFTokenizersTokenizer:
            # the library's ids are plain ints, in a list made for this segment
            return _segment(source, ids)
        return TokenSegment(source=source, ids=ids)  # another tokenizer's ids: checked here

    def _first_prompt(self, request: ModelRequest) -> list[TokenSegment]:
        model = self.model
        messages = [m.to_openai() for m in request.messages]
        # rendered once: with the generation prompt the template appends exactly
        # ``generation_prompt`` (tests/models/test_token_generation_prompt.py); the prompt
        # is ``prompt_head`` (prefix and tools block) then the messages, the ids of the head
        # kept by the encoder (tests/models/test_token_render_paths.py)
        body = glm45.render_messages(messages, enable_thinking=request.thinking)
        ids = model.encoder().encode_joined(model.prompt_head(request.tools), body)
        return [
            self._segment_of(TokenSource.PROMPT, ids),
            self._encode(glm45.generation_prompt(request.thinking), TokenSource.TEMPLATE),
        ]

    def _continuation(self, request: ModelRequest) -> list[TokenSegment]:
        new = request.messages[self.consumed :]
        segments: list[TokenSegment] = []
        marker = self.last_stop
        for message in new:
            if type(message) is ToolMessage and type(message.content) is str:
                # a tool's result (nearly every message appended): written directly, the same
                # text (tests/models/test_token_render_paths.py)
                text = glm45.render_tool_result(message.content, after_stop=marker)
                segments.append(self._encode(text, TokenSource.TOOL))
                marker = "<|observation|>"
                continue
            if isinstance(message, AssistantMessage):
                raise ContextError(
                    "an assistant message was inserted into the conversation; token mode only "
                    "appends what the model itself generated"
                )
            text = glm45.render_continuation(
                [message.to_openai()],
                after_stop=marker,
                enable_thinking=request.thinking,
                add_generation_prompt=False,
            )
            source = (
                TokenSource.TOOL
                if isinstance(message, ToolMessage)
                else TokenSource.USER
                if isinstance(message, UserMessage)
                else TokenSource.PROMPT
            )
            segments.append(self._encode(text, source))
            marker = "<|observation|>" if isinstance(message, ToolMessage) else None
        segments.append(
            self._encode(glm45.generation_prompt(request.thinking), TokenSource.TEMPLATE)
        )
        return segments

    def _appended(self, request: ModelRequest) -> list[TokenSegment]:
        if len(request.messages) < self.consumed:
            raise ContextError("messages were removed from the conversation")
        if not self.ids:
            return self._first_prompt(request)
        return self._continuation(request)

    # --- the call ------------------------------------------------------------------------------

    def _replay(self) -> ReplayRequest:
        model = self.model
        if not model.routed_experts and not model.sampling_mask:
            return _NO_REPLAY  # nothing asked: where it would start does not matter
        return ReplayRequest(
            routed_experts=model.routed_experts,
            # the previous call covered every position but its own last token
            start=max(0, len(self.ids) - 1),
            sampling_mask=model.sampling_mask,
            layout=model.moe_layout,
        )

    def _body(
        self, request: ModelRequest, input_ids: list[int], stream: bool, want: ReplayRequest
    ) -> dict[str, Any]:
        settings = self.model.settings
        if request.settings.model_fields_set:  # merging nothing would rebuild the same settings
            settings = settings.merged(request.settings)
        return {
            "rid": f"{request.episode_id or 'run'}-{request.call_index}-{_RID_PREFIX}"
            f"{next(_RID_COUNTER):x}",
            "input_ids": input_ids,
            "sampling_params": self.model.sampling_params(settings),
            "return_logprob": self.model.return_logprob,
            "stream": stream,
            **want.fields(),
        }

    async def generate(
        self, request: ModelRequest, *, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        appended = self._appended(request)
        input_ids = list(self.ids)
        for segment in appended:
            input_ids.extend(segment.ids)
        want = self._replay()
        body = self._body(request, input_ids, on_delta is not None, want)
        # the ids and segments were built here: validated where they come in (the tokenizer,
        # the previous reply), not again on every call
        sent = assemble(
            CallInput,
            {
                "mode": "tokens",
                "sampling_params": body["sampling_params"],
                "input_ids": input_ids,
                "appended": appended,
            },
            {"mode", "sampling_params", "input_ids", "appended"},
        )
        server = None if on_delta is not None else self.model.servers.sole
        if server is None:
            return await recorded_call(
                request, sent, lambda: self._call(request, input_ids, body, want, on_delta)
            )
        # The common case in one coroutine: one server (no failover, no limiter), no stream;
        # what recorded_call, ServerPool.call and _call do, without their layers on every resume.
        clock = CallClock()
        attempts: list[Attempt] = []
        wire, kept = self._wire(body, input_ids)
        try:
            data = await self.model.transport.request_json(
                f"{server}/generate",
                wire,
                self._validator(want, len(input_ids)),
                attempts=attempts,
                headers=self.headers,
            )
            reply = self._finish(request, data, server, input_ids, want, kept, attempts)
        except ModelError as exc:
            exc.record = failed_call_record(request, sent, exc, clock)
            raise
        return response_of(request, sent, reply, clock)

    def _sent_json(self, input_ids: list[int]) -> bytes:
        """``ids_json(input_ids)``: the kept JSON of the context's ids and the new ones'."""
        known = self.ids
        kept = self._ids_json_of
        if kept is None or kept[0] is not known or kept[1] != len(known):
            self._ids_json, self._ids_json_of = ids_json(known), (known, len(known))
        return joined_ids(self._ids_json, ids_json(input_ids[len(known) :]))

    def _wire(self, body: dict[str, Any], input_ids: list[int]) -> tuple[Body, bytes | None]:
        """The body as JSON bytes and the JSON of its ids; a body that will not encode goes to
        the transport as it is, which fails the attempt as for any body."""
        try:
            sent = self._sent_json(input_ids)
            return generate_body(body, sent), sent
        except (TypeError, ValueError):
            return body, None

    async def _call(
        self,
        request: ModelRequest,
        input_ids: list[int],
        fields: dict[str, Any],
        want: ReplayRequest,
        on_delta: DeltaCallback | None,
    ) -> ModelReply:
        attempts: list[Attempt] = []
        body, sent = self._wire(fields, input_ids)

        async def notify(attempt: Attempt) -> None:
            if on_delta is not None:
                await on_delta(ModelDelta(kind=StreamDeltaKind.RETRY, attempt=attempt))

        consume = (
            generate_stream_consumer(
                on_delta,
                self.model.tool_schemas(request.tools),
                thinking=request.thinking,
                logprobs=self.model.return_logprob,
                check=partial(check_replay, want=want, input_len=len(input_ids)),
            )
            if on_delta is not None
            else None
        )
        validate = self._validator(want, len(input_ids))

        async def on_server(server: str) -> dict[str, Any]:
            return await self.model.transport.post(
                f"{server}/generate",
                body,
                validate=validate,
                consume=consume,
                attempts=attempts,
                on_attempt=notify,
                headers=self.headers,
            )

        data, server = await self.model.servers.call(self.routing_key, on_server)
        return self._finish(request, data, server, input_ids, want, sent, attempts)

    def _validator(
        self, want: ReplayRequest, input_len: int
    ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """The check of a whole reply: SGLang's fields, then the replay data asked for (none
        asked: SGLang's fields alone, one check kept per log-prob setting)."""
        logprobs = self.model.return_logprob
        if not want.routed_experts and not want.sampling_mask:
            return _PLAIN_CHECKS[bool(logprobs)]

        def validate(data: dict[str, Any]) -> dict[str, Any]:
            reply = validate_generate_reply(data, logprobs=logprobs)
            check_replay(reply, want=want, input_len=input_len)
            return reply

        return validate

    def _finish(
        self,
        request: ModelRequest,
        data: dict[str, Any],
        server: str,
        input_ids: list[int],
        want: ReplayRequest,
        sent: bytes | None,
        attempts: list[Attempt],
    ) -> ModelReply:
        """The reply, the context grown by it and the JSON of the ids kept for the next call."""
        reply = self._reply(request, data, server, input_ids, want, attempts)
        if sent is not None:  # the context grew by the output ids: their JSON joins the kept
            self._ids_json = joined_ids(sent, ids_json(data["output_ids"]))
            self._ids_json_of = (self.ids, len(self.ids))
        return reply

    def _reply(
        self,
        request: ModelRequest,
        data: dict[str, Any],
        server: str,
        input_ids: list[int],
        want: ReplayRequest,
        attempts: list[Attempt] | None = None,
    ) -> ModelReply:
        """What the server generated, parsed, with the ``attempts`` it took (given as the
        reply's ``attempts`` were assigned after it was built); the session's context grows
        by it."""
        text = str(data["text"])
        output_ids: list[int] = data["output_ids"]  # ints: checked by validate_generate_reply
        meta: dict[str, Any] = data["meta_info"]
        finish: dict[str, Any] = meta["finish_reason"]
        finish_type = str(finish["type"])
        matched = finish.get("matched")
        if output_ids:
            text = self.model.tokenizer.decode(output_ids)
        schemas = self.model.tool_schemas(request.tools)
        # the parse's values, without its models (glm45.parse_plain: the same values)
        plain = glm45.parse_plain(text, schemas, thinking=request.thinking)
        reasoning, content, _, problems, stop = plain
        if stop is None and isinstance(matched, int):
            stop = self.model._stop_by_id.get(matched)
        calls, malformed = _calls(plain, text, schemas, request.thinking)
        loop_finish = "length" if finish_type == "length" else finish_type
        if finish_type == "stop" and calls:
            loop_finish = "tool_calls"
        tokens, usage, engine_meta = _engine_fields(
            meta, want, output_ids, self.model.return_logprob, len(input_ids)
        )
        # every field in field order
        replied: dict[str, Any] = {
            # the parser's texts and the calls built above, in a list made for it
            "message": assembled_assistant(content, reasoning, calls),
            "server": server,
            "output_text": text,
            "finish_reason": finish_type,
            "loop_finish_reason": loop_finish,
            "matched_stop": matched,
            "tokens": tokens,
            "usage": usage,
            "engine_meta": engine_meta,
            "problems": [f"{p.kind}: {p.message}" for p in problems],
            "malformed_calls": malformed,
            "attempts": [] if attempts is None else attempts,
        }
        # assembled unless the server's matched stop needs pydantic's coercion (or its error):
        # every other value is typed already (built here, validated models, lists made for
        # this reply); tests/models/test_token_trusted.py
        if type(matched) in _TRUSTED_MATCHED:
            given = set(_REPLY_GIVEN)
            if attempts is not None:
                given.add("attempts")
            reply = assemble(ModelReply, replied, given)
        else:
            del replied["attempts"]
            reply = ModelReply(**replied)
            if attempts is not None:
                reply.attempts = attempts
        self.ids = input_ids + output_ids
        self.consumed = len(request.messages) + 1
        self.last_stop = stop
        return reply
