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
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio.to_thread
from aiohttp import web

from agentkit.tokenizer import HFTokenizersTokenizer, load_tokenizer

from .faults import Fault
from .policy import Policy, PolicyRunner
from .routes import build_app
from .state import RequestRecord, ServerOptions, ServerState
from .test_tokenizer import load_test_tokenizer

__all__ = ["SGLangTestServer"]


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
            build_app(self._state), access_log=None, handle_signals=False, shutdown_timeout=0.5
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
