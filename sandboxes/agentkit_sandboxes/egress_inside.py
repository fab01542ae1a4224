"""The two in-container halves of a sandbox's egress allow-list (stdlib only, python3 >= 3.11).

``proxy SOCKET RULES_JSON`` runs in the egress proxy container (on the upstream Docker network):
an HTTP proxy on a unix socket that serves ``CONNECT host:port`` tunnels and absolute-form
``http://`` requests, only to hosts on the allow-list, and only to addresses that are not
loopback, link-local, multicast or unspecified (private ones too unless the rules allow them).
The name is checked before it is resolved, and the checked address is the one connected to.

``forward HOST PORT SOCKET`` is the sandbox container's main process (keeper user): it listens on
``127.0.0.1:PORT`` inside the sandbox, whose network is ``none``, and pipes every connection to
the proxy's socket (a shared volume). The sandbox has no other way out: it has no interface but
loopback.
"""

import asyncio
import contextlib
import ipaddress
import json
import os
import socket
import sys
from typing import Any

_HEAD_LIMIT = 65536


def rule_matches(rule: str, host: str, port: int) -> bool:
    """``example.com`` (ports 80 and 443), ``example.com:8080``, ``*.example.com`` (subdomains)."""
    pattern, rule_port = rule.lower(), ""
    head, sep, tail = pattern.rpartition(":")
    if sep and tail.isdigit():
        pattern, rule_port = head, tail
    if rule_port and int(rule_port) != port:
        return False
    if not rule_port and port not in (80, 443):
        return False
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def allowed(rules: "dict[str, Any]", host: str, port: int) -> bool:
    return any(rule_matches(rule, host, port) for rule in rules.get("allow", []))


def address_ok(address: str, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return False
    return allow_private or ip.is_global


def parse_target(method: str, target: str) -> "tuple[str, int, str] | None":
    """(host, port, origin-form path) of a proxy request, or None if it is not one."""
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            return None
        return host.strip("[]"), int(port), ""
    if not target.lower().startswith("http://"):
        return None
    rest = target[len("http://") :]
    authority, slash, path = rest.partition("/")
    host, colon, port = authority.rpartition(":")
    if not colon or not port.isdigit() or "]" in port:
        host, port = authority, "80"
    return host.strip("[]"), int(port), slash + path or "/"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def _splice(
    a: "tuple[asyncio.StreamReader, asyncio.StreamWriter]",
    b: "tuple[asyncio.StreamReader, asyncio.StreamWriter]",
) -> None:
    await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))


def _answer(writer: asyncio.StreamWriter, status: str, text: str) -> None:
    body = ("agentkit egress: " + text + "\n").encode()
    writer.write(
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )


async def _open(rules: "dict[str, Any]", host: str, port: int) -> "tuple[Any, Any]":
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    good = [a for a in addresses if address_ok(a, bool(rules.get("allow_private")))]
    if not good or len(good) != len(addresses):
        raise PermissionError(f"{host} resolves to a refused address ({', '.join(addresses)})")
    return await asyncio.wait_for(asyncio.open_connection(good[0], port), 10)


async def _serve_proxy(
    rules: "dict[str, Any]", reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        writer.close()
        return
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    target = parse_target(parts[0], parts[1]) if len(parts) == 3 else None
    if target is None:
        _answer(writer, "400 Bad Request", "not a proxy request")
        writer.close()
        return
    host, port, path = target
    if not allowed(rules, host, port):
        _answer(writer, "403 Forbidden", f"{host}:{port} is not on the allow-list")
        writer.close()
        return
    try:
        upstream = await _open(rules, host, port)
    except PermissionError as exc:
        _answer(writer, "403 Forbidden", str(exc))
        writer.close()
        return
    except (TimeoutError, OSError) as exc:
        _answer(writer, "502 Bad Gateway", f"cannot reach {host}:{port}: {exc}")
        writer.close()
        return
    if parts[0] == "CONNECT":
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    else:
        kept = [
            line
            for line in lines[1:]
            if line and not line.lower().startswith(("proxy-", "connection:", "keep-alive:"))
        ]
        request = [f"{parts[0]} {path} {parts[2]}", *kept, "Connection: close", "", ""]
        upstream[1].write("\r\n".join(request).encode("latin-1"))
    await _splice((reader, writer), upstream)


async def _serve_forward(
    socket_path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    for _ in range(50):  # the proxy may still be starting
        try:
            upstream = await asyncio.open_unix_connection(socket_path)
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        _answer(writer, "502 Bad Gateway", "the egress proxy does not answer")
        writer.close()
        return
    await _splice((reader, writer), upstream)


async def _main(argv: "list[str]") -> None:
    if argv[0] == "proxy":
        socket_path, rules = argv[1], json.loads(argv[2])
        with_rules = lambda r, w: _serve_proxy(rules, r, w)  # noqa: E731
        server = await asyncio.start_unix_server(with_rules, socket_path, limit=_HEAD_LIMIT)
        os.chmod(socket_path, 0o666)
    else:
        host, port, socket_path = argv[1], int(argv[2]), argv[3]
        forward = lambda r, w: _serve_forward(socket_path, r, w)  # noqa: E731
        server = await asyncio.start_server(forward, host, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
