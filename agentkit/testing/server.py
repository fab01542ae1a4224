"""``SGLangTestServer``: a real HTTP server on 127.0.0.1 speaking SGLang's protocol for GLM-4.5.

It runs aiohttp in its own thread with its own event loop, so it never competes with the
caller's loop and works under any async backend (asyncio, trio) and from sync code::

    async with SGLangTestServer(policy=["<think>hi</think>\\nHello!"]) as server:
        ...  # point a client at server.base_url

    with SGLangTestServer(policy=my_policy) as server:  # sync use
        ...

Every request and what was answered is kept in ``server.requests``. ``fail_next`` and
``drop_next`` inject faults into the next generation requests (``/generate`` and
``/v1/chat/completions``) for client retry tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio.to_thread
from aiohttp import web

from agentkit.tokenizer import HFTokenizersTokenizer, load_tokenizer

from .chat_endpoint import handle_chat_completions
from .fault_routes import after_answer, before_answer
from .faults import FAULT_KEY, Fault
from .generate_endpoint import handle_generate
from .policy import Policy, PolicyRunner
from .state import RequestRecord, ServerOptions, ServerState, error_response, json_response
from .test_tokenizer import load_test_tokenizer

__all__ = ["SGLangTestServer"]

_SERVER_VERSION = "0.5.23-agentkit-test"
Handler = Callable[[ServerState, web.Request, RequestRecord], Awaitable[web.StreamResponse]]


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering (the client sees a disconnect)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise ConnectionResetError("test server dropped the connection on purpose")


def _generation_route(
    state: ServerState, handler: Handler, openai: bool
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def route(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        record = state.record(RequestRecord(request.method, request.path, body))
        status, drop = state.take_fault()
        if drop:
            record.dropped = True
            record.status = 0
            return _drop(request)
        fault = state.faults.take() if status is None else None
        if fault is not None:
            record.fault = fault
            request[FAULT_KEY] = fault
            stream = isinstance(body, dict) and bool(body.get("stream"))
            early = await before_answer(state, request, record, fault, openai, stream=stream)
            if early is not None:
                return early
        if status is not None:
            response: web.StreamResponse = error_response(
                f"injected failure (status {status})", status, openai=openai
            )
        elif not isinstance(body, dict):
            response = error_response("request body must be a JSON object", 400, openai=openai)
        else:
            response = await handler(state, request, record)
        record.status = response.status
        if isinstance(response, web.Response) and record.response is None and response.text:
            record.response = json.loads(response.text)
        if fault is not None and isinstance(response, web.Response):
            return await after_answer(request, record, fault, response)
        return response

    return route


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _build_app(state: ServerState) -> web.Application:
    app = web.Application(client_max_size=256 * 1024 * 1024)
    options = state.options

    def model_info() -> dict[str, Any]:
        return {
            "model_path": options.model,
            "tokenizer_path": getattr(state.tokenizer, "source", ""),
            "served_model_name": options.model,
            "is_generation": True,
            "preferred_sampling_params": None,
            "weight_version": state.weight_version,
            "has_image_understanding": False,
            "has_audio_understanding": False,
            "model_type": "glm4_moe",
            "architectures": ["Glm4MoeForCausalLM"],
            "reasoning_parser": "glm45",
            "tool_call_parser": "glm45",
        }

    def server_info() -> dict[str, Any]:
        speculative = options.accept_length is not None
        return {
            "model_path": options.model,
            "served_model_name": options.model,
            "tool_call_parser": "glm45",
            "reasoning_parser": "glm45",
            "context_length": options.context_length,
            "speculative_algorithm": "EAGLE" if speculative else None,
            "speculative_num_steps": 3 if speculative else None,
            "speculative_eagle_topk": 1 if speculative else None,
            "speculative_num_draft_tokens": 4 if speculative else None,
            "internal_states": [
                {"avg_spec_accept_length": options.accept_length, "last_gen_throughput": 0.0}
            ],
            "version": _SERVER_VERSION,
        }

    def logged(
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def route(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = None
            record = state.record(RequestRecord(request.method, request.path, body))
            response = await handler(request)
            record.status = response.status
            if isinstance(response, web.Response) and response.text:
                try:
                    record.response = json.loads(response.text)
                except json.JSONDecodeError:
                    record.response = response.text
            return response

        return route

    async def health(_: web.Request) -> web.StreamResponse:
        return web.Response(status=200)

    async def get_model_info(_: web.Request) -> web.StreamResponse:
        return json_response(model_info())

    async def get_server_info(_: web.Request) -> web.StreamResponse:
        return json_response(server_info())

    async def models(_: web.Request) -> web.StreamResponse:
        return json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": options.model,
                        "object": "model",
                        "created": int(state.started_at),
                        "owned_by": "sglang",
                        "root": options.model,
                        "max_model_len": options.context_length,
                    }
                ],
            }
        )

    async def flush_cache(_: web.Request) -> web.StreamResponse:
        state.engine.cache.flush()
        return web.Response(text="Cache flushed.\n", status=200)

    async def abort_request(request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        state.abort(body.get("rid"), bool(body.get("abort_all")))
        return web.Response(status=200)

    async def update_weight_version(request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        version = body.get("new_version")
        if not isinstance(version, str) or not version:
            return error_response("'new_version' must be a non-empty string", 400, openai=False)
        state.weight_version = version
        return json_response({"success": True, "message": f"weight version set to {version}"})

    async def update_weights_from_disk(request: web.Request) -> web.StreamResponse:
        body = await _json_object(request)
        if not isinstance(body.get("model_path"), str):
            return error_response("'model_path' is required", 400, openai=False)
        if isinstance(body.get("weight_version"), str):
            state.weight_version = body["weight_version"]
        if body.get("flush_cache", True):
            state.engine.cache.flush()
        return json_response(
            {
                "success": True,
                "message": "Succeeded to update model weights.",
                "num_paused_requests": 0,
            }
        )

    router = app.router
    router.add_post("/v1/chat/completions", _generation_route(state, handle_chat_completions, True))
    router.add_post("/generate", _generation_route(state, handle_generate, False))
    for path in ("/health", "/health_generate"):
        router.add_get(path, logged(health))
    for path in ("/model_info", "/get_model_info"):
        router.add_get(path, logged(get_model_info))
    for path in ("/server_info", "/get_server_info"):
        router.add_get(path, logged(get_server_info))
    router.add_get("/v1/models", logged(models))
    router.add_get("/flush_cache", logged(flush_cache))
    router.add_post("/flush_cache", logged(flush_cache))
    router.add_post("/abort_request", logged(abort_request))
    router.add_post("/update_weight_version", logged(update_weight_version))
    router.add_post("/update_weights_from_disk", logged(update_weights_from_disk))
    return app


class SGLangTestServer:
    """A protocol-faithful fake SGLang server serving GLM-4.5 from a scripted policy.

    ``policy``: a list of raw completions (``str`` or :class:`Completion`) served in order, or
    a callable ``(PolicyRequest) -> str | Completion`` (sync or async; async policies run on
    the server's own event loop). ``tokenizer``: a loaded tokenizer or a path to a
    ``tokenizer.json`` (default: the offline GLM-4.5 test tokenizer). Other keyword arguments
    are :class:`ServerOptions` (``latency_s``, ``chunk_delay_s``, ``accept_length``, ...).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        tokenizer: HFTokenizersTokenizer | str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        options: ServerOptions | None = None,
        **option_values: Any,
    ) -> None:
        if isinstance(tokenizer, str | Path):
            loaded = load_tokenizer(tokenizer)
            if not isinstance(loaded, HFTokenizersTokenizer):
                raise TypeError(f"{tokenizer} has no tokenizer.json (the test server needs one)")
            tokenizer = loaded
        self.tokenizer = tokenizer or load_test_tokenizer()
        if options is None:
            options = ServerOptions(**option_values)
        elif option_values:
            raise TypeError("pass either options= or option keywords, not both")
        self.options = options
        self._state = ServerState(
            tokenizer=self.tokenizer, policy=PolicyRunner(policy), options=options
        )
        self.host = host
        self._requested_port = port
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # public ------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("the server is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received, in arrival order, with the response (or stream chunks)."""
        return self._state.records

    def generation_requests(self) -> list[RequestRecord]:
        """Only the ``/generate`` and ``/v1/chat/completions`` records."""
        return [r for r in self.requests if r.path in ("/generate", "/v1/chat/completions")]

    @property
    def weight_version(self) -> str:
        return self._state.weight_version

    @weight_version.setter
    def weight_version(self, value: str) -> None:
        self._state.weight_version = value

    def fail_next(self, count: int = 1, status: int = 503) -> None:
        """Answer the next ``count`` generation requests with HTTP ``status`` and an error body."""
        self._state.fail_next(count, status)

    def drop_next(self, count: int = 1) -> None:
        """Close the connection of the next ``count`` generation requests without answering."""
        self._state.drop_next(count)

    def inject(self, fault: Fault) -> None:
        """Make the next generation request(s) fail as ``fault`` says (see
        :mod:`agentkit.testing.faults`); faults apply in the order injected."""
        self._state.faults.add(fault)

    def clear_faults(self) -> None:
        """Drop every fault not yet applied (``always`` faults included)."""
        self._state.faults.clear()

    @property
    def injected(self) -> list[Fault]:
        """The fault each faulted request got, in order."""
        return list(self._state.faults.injected)

    def flush_cache(self) -> None:
        self._state.engine.cache.flush()

    # lifecycle ---------------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> SGLangTestServer:
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        self._thread = threading.Thread(
            target=self._run_thread, name="sglang-test-server", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the test server did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the test server failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        loop, stop_event, thread = self._loop, self._stop_event, self._thread
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may already have ended
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout)
        self._thread = None
        self.port = 0

    def __enter__(self) -> SGLangTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SGLangTestServer:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)

    async def serve(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve on the current asyncio loop until cancelled (used by the CLI)."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        runner = web.AppRunner(
            _build_app(self._state), access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await runner.setup()
        try:
            site = web.TCPSite(
                runner, self.host, self._requested_port, reuse_address=True, backlog=4096
            )
            await site.start()
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            self.port = int(sockets[0].getsockname()[1]) if sockets else self._requested_port
            self._state.die = self._dier(runner, site)
            self._ready.set()
            if on_ready is not None:
                on_ready(self.base_url)
            await self._stop_event.wait()
        finally:
            await runner.cleanup()

    def _dier(
        self, runner: web.AppRunner, site: web.TCPSite
    ) -> Callable[[float | None], Coroutine[Any, Any, None]]:
        """Server death: stop listening, cut every connection, listen again after a delay."""
        current = [site]
        port = self.port

        async def die(revive_after_s: float | None) -> None:
            with contextlib.suppress(RuntimeError):
                await current[0].stop()
            if runner.server is not None:
                for handler in list(runner.server.connections):
                    transport = handler.transport
                    if transport is not None:
                        transport.abort()
            if revive_after_s is None:
                return
            await asyncio.sleep(revive_after_s)
            revived = web.TCPSite(runner, self.host, port, reuse_address=True, backlog=4096)
            await revived.start()
            current[0] = revived

        return die

    def _run_thread(self) -> None:
        try:
            asyncio.run(self.serve())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
