"""The browser's only way out: a small HTTP proxy on 127.0.0.1 that enforces the domain policy.

Each browser session gets its own :class:`EgressProxy` and its context is configured to send
everything through it (Chromium then resolves no host names itself). The proxy sees every
connection a page makes, whatever made it (navigation, redirect hop, fetch, XHR, WebSocket,
EventSource, iframe, prefetch, beacon, worker): plain HTTP as an absolute-URI request, HTTPS and
WebSockets as ``CONNECT host:port``. For each one it asks :meth:`DomainPolicy.admit`, which
resolves the host once and checks every address, then connects to the address that was checked.
A refused connection is answered ``403`` with the reason in an ``X-Agentkit-Blocked`` header (and
a short page for plain HTTP) and is recorded as a :class:`BlockedRequest`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from contextlib import suppress

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream
from pydantic import BaseModel

from .browser_policy import DomainPolicy

BLOCKED_HEADER = "X-Agentkit-Blocked"
_MAX_HEAD = 64 * 1024
_HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te"}
_CHUNK = 64 * 1024


class BlockedRequest(BaseModel):
    """A connection the policy refused: what was asked for and why it was refused."""

    target: str
    reason: str
    at: float


class _BadRequest(Exception):
    pass


class EgressProxy:
    """One session's proxy. ``async with EgressProxy(policy) as proxy``: ``proxy.server`` is the
    address to give Chromium; the listener and every relay end when the block exits."""

    def __init__(
        self,
        policy: DomainPolicy,
        *,
        connect_timeout_s: float = 10.0,
        on_block: Callable[[BlockedRequest], None] | None = None,
        unix_path: str | None = None,
    ) -> None:
        """``unix_path``: listen on that Unix socket instead of a loopback port (for a browser
        in a container, which reaches it through a forwarder)."""
        self.policy = policy
        self.unix_path = unix_path
        self.connect_timeout_s = connect_timeout_s
        self.blocked: list[BlockedRequest] = []
        self.connections = 0
        self._on_block = on_block
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None
        self._port: int | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._port is not None, "the proxy is not listening on a loopback port"
        return self._port

    @property
    def server(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> EgressProxy:
        listener: anyio.abc.Listener[anyio.abc.SocketStream]
        if self.unix_path is not None:
            with suppress(FileNotFoundError):
                os.unlink(self.unix_path)
            listener = await anyio.create_unix_listener(self.unix_path)
            os.chmod(self.unix_path, 0o666)  # the container's unprivileged user connects
        else:
            tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
            self._port = int(tcp.listeners[0].extra(anyio.abc.SocketAttribute.local_port))
            listener = tcp
        self._listener = listener
        # A task of its own rather than a task group around the caller's block: the caller's
        # exceptions and cancellations then pass through untouched.
        self._task = asyncio.get_running_loop().create_task(listener.serve(self._handle))
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop serving: the listener and every relay still open end here."""
        assert self._task is not None and self._listener is not None
        self._task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([self._task])
            await self._listener.aclose()
        if self.unix_path is not None:
            with suppress(FileNotFoundError):
                os.unlink(self.unix_path)

    # --- one client connection -----------------------------------------------------------------

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        """One client connection. Nothing a client sends can stop the proxy: every error ends
        this connection only (an exception here would end the listener's task group)."""
        async with client:
            try:
                await self._serve(client)
            except (_BadRequest, UnicodeDecodeError, ValueError):
                await _send_quietly(client, _reply(400, "Bad Request"))
            except anyio.DelimiterNotFound:
                await _send_quietly(client, _reply(431, "Request Header Fields Too Large"))
            except (anyio.EndOfStream, anyio.IncompleteRead, OSError, TimeoutError):
                pass
            except anyio.get_cancelled_exc_class():
                raise
            except Exception as exc:  # a bug here must not take the session's network down
                await _send_quietly(client, _reply(502, "Bad Gateway", type(exc).__name__))

    async def _serve(self, client: anyio.abc.SocketStream) -> None:
        buffered = BufferedByteReceiveStream(client)
        with anyio.fail_after(self.connect_timeout_s):
            head = await buffered.receive_until(b"\r\n\r\n", _MAX_HEAD)
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        if method.upper() == "CONNECT":
            host, port = _host_port(target, default=443)
            shown = target
        else:
            host, port, path = _absolute_target(target)
            shown = target
        admission = await self.policy.admit(host, port)
        if admission.reason is not None or admission.address is None:
            reason = admission.reason or "no address"
            self._record(BlockedRequest(target=shown, reason=reason, at=time.time()))
            await client.send(_blocked_reply(reason, page=method.upper() != "CONNECT"))
            return
        try:
            with anyio.fail_after(self.connect_timeout_s):
                upstream = await anyio.connect_tcp(admission.address, port)
        except (OSError, TimeoutError) as exc:
            await client.send(_reply(502, "Bad Gateway", f"cannot connect to {shown}: {exc}"))
            return
        self.connections += 1
        async with upstream:
            if method.upper() == "CONNECT":
                await client.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                headers = _forwarded_headers(header_lines)
                out = f"{method} {path} {version}\r\n" + "".join(h + "\r\n" for h in headers)
                await upstream.send((out + "\r\n").encode("latin-1"))
            leftover = bytes(buffered.buffer)
            if leftover:
                await upstream.send(leftover)
            rewrite = method.upper() != "CONNECT" and "upgrade" not in _header_names(header_lines)
            async with anyio.create_task_group() as group:
                group.start_soon(_pump_back, upstream, client, rewrite)
                # The exchange ends when the client is done with it, whatever the other side
                # (an origin that ignores "Connection: close" cannot hold it open).
                await _pump(client, upstream)
                group.cancel_scope.cancel()

    def _record(self, blocked: BlockedRequest) -> None:
        self.blocked.append(blocked)
        if self._on_block is not None:
            self._on_block(blocked)


def _host_port(target: str, *, default: int) -> tuple[str, int]:
    if target.startswith("["):
        host, _, rest = target[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = target.rpartition(":") if ":" in target else (target, "", "")
    if not host:
        raise _BadRequest(target)
    return host, int(port) if port else default


def _absolute_target(target: str) -> tuple[str, int, str]:
    """``http://host:port/path`` into host, port and the origin-form path."""
    scheme, sep, rest = target.partition("://")
    if not sep or scheme.lower() != "http":
        raise _BadRequest(target)
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    host, port = _host_port(authority, default=80)
    return host, port, slash + path if slash else "/"


def _header_names(lines: list[str]) -> set[str]:
    return {line.split(":", 1)[0].strip().lower() for line in lines if line}


def _forwarded_headers(lines: list[str]) -> list[str]:
    """The headers without hop-by-hop ones, closing the connection after one exchange (an
    ``Upgrade`` request keeps its ``Connection`` header)."""
    if "upgrade" in _header_names(lines):
        return [line for line in lines if line and not line.lower().startswith("proxy-")]
    kept = [line for line in lines if line]
    kept = [line for line in kept if line.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
    return [*kept, "Connection: close"]


async def _pump(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream) -> None:
    try:
        while True:
            await sink.send(await source.receive(_CHUNK))
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    finally:
        await _eof_quietly(sink)


async def _pump_back(
    source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream, rewrite: bool
) -> None:
    """Upstream to client; for plain HTTP the response head says ``Connection: close`` so that
    Chromium never reuses a connection whose destination was checked for another request."""
    if rewrite:
        buffered = BufferedByteReceiveStream(source)
        try:
            head = await buffered.receive_until(b"\r\n\r\n", _MAX_HEAD)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound, OSError):
            await _eof_quietly(sink)
            return
        status, *lines = head.decode("latin-1").split("\r\n")
        fixed = [status, *_forwarded_headers(lines)]
        try:
            await sink.send(("\r\n".join(fixed) + "\r\n\r\n").encode("latin-1"))
            if buffered.buffer:
                await sink.send(bytes(buffered.buffer))
        except (anyio.BrokenResourceError, OSError):
            return
    await _pump(source, sink)


_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


async def _eof_quietly(stream: anyio.abc.SocketStream) -> None:
    with suppress(*_GONE):
        await stream.send_eof()


async def _send_quietly(stream: anyio.abc.SocketStream, data: bytes) -> None:
    with suppress(*_GONE):
        await stream.send(data)


def _reply(status: int, phrase: str, text: str = "") -> bytes:
    body = text.encode()
    head = f"HTTP/1.1 {status} {phrase}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def _blocked_reply(reason: str, *, page: bool) -> bytes:
    safe = reason.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")
    body = b""
    if page:
        text = f"Blocked by the browser's network policy: {safe}"
        body = (f"<!doctype html><title>Blocked</title><p>{_escape(text)}</p>").encode()
    head = (
        f"HTTP/1.1 403 Forbidden\r\n{BLOCKED_HEADER}: {safe}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
