"""Chat mode: SGLang's OpenAI-compatible ``/v1/chat/completions`` with the glm45 parsers.

The server renders the template and parses tool calls; this client sends the whole conversation
each call and sends assistant messages back with ``reasoning_content`` and ``tool_calls`` exactly
as the server returned them. Chat mode gives no token ids: records say so (``token_exact`` false).
"""

from __future__ import annotations

import copy
import functools
import uuid
from typing import Any, Literal

from agentkit.messages import assemble, assistant_reply, to_openai
from agentkit.models.base import (
    DeltaCallback,
    ModelDelta,
    ModelError,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    StreamDeltaKind,
)
from agentkit.models.chat_wire import (
    ChatReply,
    WireHistory,
    chat_stream_consumer,
    tool_calls_from_wire,
    validate_chat_reply,
)
from agentkit.models.client_markup import (
    CLIENT_PARSERS,
    ClientParser,
    needs_client_parse,
    parse_client_side,
)
from agentkit.models.recording import (
    CallClock,
    CallInput,
    CallUsage,
    ModelReply,
    failed_call_record,
    recorded_call,
    response_of,
)
from agentkit.models.transport import JSON_CONTENT_TYPE, Body, RetryPolicy, Transport, _dumps
from agentkit.models.urls import ROUTING_KEY_HEADER, ServerPool
from agentkit.trajectory.records import Attempt, SharedParams, trusted

ServerFlavour = Literal["sglang", "openai"]
# Request fields only SGLang understands; strict OpenAI-compatible servers answer 400 to them.
SGLANG_ONLY_FIELDS = ("chat_template_kwargs", "separate_reasoning", "return_spec_tokens_details")


class SGLangChat:
    """A chat-mode backend. ``base_url`` is one server or a list (see :class:`ServerPool`);
    a trailing ``/v1`` is dropped, an invalid URL raises ``ValueError`` here.

    ``server``: ``"sglang"`` (default) sends SGLang's extra request fields (thinking switch,
    separate reasoning, speculative-decoding stats); ``"openai"`` sends only standard OpenAI
    fields, for vLLM, llama.cpp's server, Ollama or OpenAI itself.
    """

    mode = "chat"

    def __init__(
        self,
        base_url: str | list[str],
        *,
        model: str = "default",
        settings: ModelSettings | None = None,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        separate_reasoning: bool = True,
        extra_body: dict[str, Any] | None = None,
        max_concurrency_per_server: int | None = None,
        speculative_stats: bool = True,
        client_parser: ClientParser | None = None,
        server: ServerFlavour = "sglang",
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError("model must be a non-empty string (the served model name)")
        if client_parser is not None and client_parser not in CLIENT_PARSERS:
            raise ValueError(f"client_parser must be one of {CLIENT_PARSERS} or None")
        if server not in ("sglang", "openai"):
            raise ValueError("server must be 'sglang' or 'openai'")
        self.name = model
        self.servers = ServerPool(base_url, max_concurrency_per_server=max_concurrency_per_server)
        self.settings = settings or ModelSettings()
        self.transport = transport or Transport(retry)
        self.server = server
        self.separate_reasoning = separate_reasoning
        self.extra_body = dict(extra_body or {})
        # SGLang >= 0.5.23 reports EAGLE/MTP verify counts only when asked; older servers
        # ignore the unknown field. Turn off for servers that reject unknown fields.
        self.speculative_stats = speculative_stats and server == "sglang"
        # For OpenAI-compatible servers started without a tool-call parser (vLLM, llama.cpp,
        # Ollama): tool-call markup left in ``content`` is parsed here with this dialect.
        self.client_parser = client_parser
        self._chat_urls: dict[str, str] = {}
        self._sampling: SharedParams | None = None
        self._head: tuple[str, bytes] | None = None
        self._sent: CallInput | None = None
        self._merged: (
            tuple[ModelSettings, ModelSettings, dict[str, Any], dict[str, Any], ModelSettings]
            | None
        ) = None

    def chat_url(self, server: str) -> str:
        """The chat-completions endpoint of ``server`` (built once per server)."""
        url = self._chat_urls.get(server)
        if url is None:
            url = self._chat_urls[server] = f"{server}/v1/chat/completions"
        return url

    def settings_for(self, given: ModelSettings) -> ModelSettings:
        """This model's settings merged with a request's ``given`` ones (``merged``, ~9 us):
        the last merge again while both are the same objects (frozen) with equal ``extra``
        (compared with a deep copy made at the merge: an ``extra`` changed in place, nested
        too, is merged afresh)."""
        mine = self.settings
        if not given.model_fields_set:  # merging nothing would rebuild the same settings
            return mine
        last = self._merged
        if (
            last is not None
            and last[0] is mine
            and last[1] is given
            and mine.extra == last[2]
            and given.extra == last[3]
        ):
            return last[4]
        merged = mine.merged(given)
        self._merged = (mine, given, copy.deepcopy(mine.extra), copy.deepcopy(given.extra), merged)
        return merged

    def body_head(self) -> bytes:
        """How an encoded body with ``"messages": null`` starts: ``{"model":<name>,"messages":null``
        (built once per name)."""
        head = self._head
        if head is None or head[0] != self.name:
            head = self._head = (self.name, b'{"model":' + _dumps(self.name) + b',"messages":null')
        return head[1]

    def call_input(self, body: dict[str, Any]) -> CallInput:
        """What the record keeps of ``body``: the last call's own when it was sent the same
        shared sampling params (a call input is read, never changed)."""
        params = self.share_sampling(body)
        last = self._sent
        if last is not None and last.sampling_params is params:
            return last
        # trusted: a literal mode and the params this model shares (see share_sampling)
        sent = trusted(CallInput, {"mode": "chat", "sampling_params": params})
        if type(params) is SharedParams:
            self._sent = sent
        return sent

    def share_sampling(self, body: dict[str, Any]) -> dict[str, Any]:
        """The sampling params of ``body`` (what the record keeps): the last call's own
        read-only object when they are the same (the common case), so the records share one
        copy; a plain dict of their own when they hold a list (which could be changed)."""
        params = _sampling(body)
        last = self._sampling
        if last is not None and last == params:
            return last
        shared = _frozen(params)
        if shared is not None:
            self._sampling = shared
            return shared
        return params

    def session(self, *, routing_key: str | None = None) -> ChatSession:
        return ChatSession(self, routing_key or uuid.uuid4().hex)

    async def aclose(self) -> None:
        await self.transport.aclose()


class ChatSession:
    def __init__(self, model: SGLangChat, routing_key: str) -> None:
        self.model = model
        self.routing_key = routing_key
        # SGLang's router keeps every request with this key on one server behind it
        self.headers: dict[str, str] | None = (
            {ROUTING_KEY_HEADER: routing_key} if model.server == "sglang" else None
        )
        # what each request sends: these with the JSON content type, built once
        self._sent_headers = {"content-type": JSON_CONTENT_TYPE, **(self.headers or {})}
        self._history = WireHistory()  # the messages' JSON, kept from call to call

    def _body(self, request: ModelRequest, stream: bool) -> dict[str, Any]:
        """The request body with its messages (the dict form :meth:`_encoded` sends)."""
        body = self._fields(request, stream)
        if body["messages"] is _TO_FILL:
            body["messages"] = to_openai(request.messages)
        return body

    def _encoded(self, request: ModelRequest, body: dict[str, Any]) -> Body:
        """``body`` (from :meth:`_fields`) as sent: JSON bytes whose messages part is this
        session's :class:`WireHistory` (each message encoded once), the same JSON value as
        encoding ``body`` with ``to_openai(request.messages)``; else the dict, with them."""
        if body["messages"] is _TO_FILL:
            history = self._history.encoded(request.messages)
            if history is not None:
                body["messages"] = None
                try:
                    whole = _dumps(body)
                except Exception:  # the transport encodes the dict and fails as it fails
                    whole = b""
                head = self.model.body_head()
                if whole.startswith(head):  # {"model":...,"messages":null
                    return head[: -len(b"null")] + history + whole[len(head) :]
            body["messages"] = to_openai(request.messages)
        return body

    def _fields(self, request: ModelRequest, stream: bool) -> dict[str, Any]:
        """The request body, its messages left to fill (``_TO_FILL``) unless an extra field
        gives them (as its update of the body would)."""
        settings = self.model.settings_for(request.settings)
        body: dict[str, Any] = {
            "model": self.model.name,
            "messages": _TO_FILL,
            "max_tokens": settings.max_tokens,
            "stream": stream,
        }
        if self.model.server == "sglang":
            body["chat_template_kwargs"] = {"enable_thinking": request.thinking}
            body["separate_reasoning"] = self.model.separate_reasoning
        if request.tools:
            body["tools"] = request.tools
            body["tool_choice"] = request.tool_choice
        for key in ("temperature", "top_p", "top_k", "seed"):
            value = getattr(settings, key)
            if value is not None:
                body[key] = value
        if stream:
            body["stream_options"] = {"include_usage": True}
        if self.model.speculative_stats:
            body["return_spec_tokens_details"] = True
        if self.model.extra_body:
            body.update(self.model.extra_body)
        if settings.extra:
            body.update(settings.extra)
        return body

    async def generate(
        self, request: ModelRequest, *, on_delta: DeltaCallback | None = None
    ) -> ModelResponse:
        stream = on_delta is not None
        fields = self._fields(request, stream)
        sent = self.model.call_input(fields)
        body = self._encoded(request, fields)
        del fields
        server = None if stream else self.model.servers.sole
        if server is None:
            call_once = functools.partial(self._call, request, body, on_delta)
            return await recorded_call(request, sent, call_once)
        # The common case in one coroutine: one server (no failover, no limiter), no stream;
        # what recorded_call and ServerPool.call do, without their layers on every resume.
        clock = CallClock()
        attempts: list[Attempt] = []
        call = self.model.transport.request_json(
            self.model.chat_url(server),
            body,
            validate_chat_reply,
            attempts=attempts,
            headers=self._sent_headers,
        )
        del body  # the transport keeps the encoded bytes only, while the reply is awaited
        try:
            reply = await call
        except ModelError as exc:
            exc.record = failed_call_record(request, sent, exc, clock)
            raise
        return response_of(request, sent, self._reply(request, reply, server, attempts), clock)

    async def _call(
        self, request: ModelRequest, body: Body, on_delta: DeltaCallback | None
    ) -> ModelReply:
        attempts: list[Attempt] = []

        async def notify(attempt: Attempt) -> None:
            if on_delta is not None:
                await on_delta(ModelDelta(kind=StreamDeltaKind.RETRY, attempt=attempt))

        consume = (
            chat_stream_consumer(on_delta, self.model.client_parser, request.tools)
            if on_delta is not None
            else None
        )

        async def on_server(server: str) -> ChatReply:
            return await self.model.transport.post(
                self.model.chat_url(server),
                body,
                validate=validate_chat_reply,
                consume=consume,
                attempts=attempts,
                on_attempt=notify,
                headers=self._sent_headers,
            )

        reply, server = await self.model.servers.call(self.routing_key, on_server)
        return self._reply(request, reply, server, attempts)

    def _reply(
        self, request: ModelRequest, reply: ChatReply, server: str, attempts: list[Attempt]
    ) -> ModelReply:
        message, usage, finish, matched, spec = reply
        calls, problems = tool_calls_from_wire(message.get("tool_calls") or [])
        content = message.get("content") or ""
        if not isinstance(content, str):
            content = str(content)
        reasoning = message.get("reasoning_content")
        reasoning = reasoning if isinstance(reasoning, str) else None
        if self.model.client_parser and not calls and needs_client_parse(content):
            content, reasoning, calls, problems = parse_client_side(
                self.model.client_parser, content, reasoning, request.tools, problems
            )
            if calls and finish == "stop":
                finish = "tool_calls"
        if not content and not calls and reasoning and finish != "length":
            problems.append(
                "empty_content: the reply had reasoning but no answer (server parser artifact)"
            )
        details = usage.get("prompt_tokens_details") or {}
        completion = usage.get("completion_tokens")
        # one fields set for the replies (they all give the same fields)
        assistant = assistant_reply(content, reasoning, calls)
        counts = {
            "prompt_tokens": _int(usage.get("prompt_tokens")),
            "completion_tokens": _int(completion),
            "cached_tokens": (
                _int(details.get("cached_tokens")) if isinstance(details, dict) else None
            ),
            "spec_verify_ct": spec,
            "accept_length": completion / spec if spec and isinstance(completion, int) else None,
            "weight_version": None,  # not given (a default)
        }
        if type(spec) in _TRUSTED_COUNT and type(counts["accept_length"]) in _TRUSTED_RATIO:
            # assembled: ints (bools left out) and a float of two ints, every field in field
            # order, the five given as its fields set (tests/models/test_call_path_replies.py)
            usage_ = assemble(CallUsage, counts, set(_USAGE_GIVEN))
        else:  # a count of another type (spec_verify_ct True) is validated, as before
            del counts["weight_version"]
            usage_ = CallUsage(**counts)
        if type(matched) not in _TRUSTED_MATCHED:
            # what the server sent needs pydantic's coercion (or its error): validated
            return ModelReply(
                message=assistant,
                server=server,
                output_text=content,
                finish_reason=finish,
                loop_finish_reason=finish,
                matched_stop=matched,
                usage=usage_,
                problems=problems,
                attempts=attempts,
            )
        # Assembled: every other value is typed already (built here, validated models, lists
        # made for this reply), every field in field order, the given ones as its fields set;
        # see tests/models/test_call_path_trusted.py.
        data = {
            "message": assistant,
            "server": server,
            "output_text": content,
            "finish_reason": finish,
            "loop_finish_reason": finish,
            "matched_stop": matched,
            "tokens": None,
            "usage": usage_,
            "engine_meta": {},
            "problems": problems,
            "malformed_calls": [],
            "attempts": attempts,
        }
        return assemble(ModelReply, data, set(_REPLY_GIVEN))


# the messages of a body being built, filled in when it is encoded
_TO_FILL: Any = object()

_REPLY_GIVEN = (
    "message",
    "server",
    "output_text",
    "finish_reason",
    "loop_finish_reason",
    "matched_stop",
    "usage",
    "problems",
    "attempts",
)
_USAGE_GIVEN = (
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "spec_verify_ct",
    "accept_length",
)
_TRUSTED_COUNT = (int, type(None))
_TRUSTED_RATIO = (float, type(None))

# matched_stop as the server sent it, when it is already the record's type
_TRUSTED_MATCHED = (int, str, type(None))


def _frozen(params: dict[str, Any]) -> SharedParams | None:
    """``params`` as a read-only dict, nested dicts too; ``None`` if they hold anything else
    that could be changed in place (a list)."""
    values: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            value = _frozen(value)
            if value is None:
                return None
        elif not isinstance(value, str | int | float | bool | None):
            return None
        values[key] = value
    return SharedParams(values)


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without its messages and tools, in its order (a copy, then two deletions: what
    a filtering comprehension gives, without a step per item)."""
    params = dict(body)
    params.pop("messages", None)
    params.pop("tools", None)
    return params


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
