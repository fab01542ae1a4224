"""The browser's domain policy and egress proxy, without a browser: address forms, verdicts, and
the proxy's answers to raw clients on 127.0.0.1 (no name here is ever looked up in DNS)."""

from __future__ import annotations

import http.server
import ipaddress
from collections.abc import Iterator

import anyio
import pytest

from agentkit_sandboxes.browser_policy import DomainPolicy, canonical_host, non_public, parse_ipv4
from agentkit_sandboxes.browser_proxy import BLOCKED_HEADER, EgressProxy
from tests.browser_support import serving


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("0x7f000001", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("LOCALHOST.", "localhost"),
        ("Docs.Example.ORG", "docs.example.org"),
        ("256.0.0.1", "256.0.0.1"),  # not an address; judged by what it resolves to
    ],
)
def test_hosts_are_read_as_a_browser_reads_them(host: str, canonical: str) -> None:
    assert canonical_host(host) == canonical


def test_invalid_numeric_forms_are_not_addresses() -> None:
    assert parse_ipv4("1.2.3.4.5") is None
    assert parse_ipv4("09.1.1.1") is None  # 9 is not an octal digit
    assert parse_ipv4("1.2.65536") is None
    assert parse_ipv4("example.org") is None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 form of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("fd00::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("224.0.0.1", "multicast"),
        ("93.184.215.14", None),
        ("2606:4700::1111", None),
    ],
)
def test_non_public_addresses_are_named(address: str, kind: str | None) -> None:
    assert non_public(ipaddress.ip_address(address)) == kind


def test_host_lists_with_ports_and_subdomains() -> None:
    policy = DomainPolicy(allow=("example.org", "127.0.0.1:8080"), deny=("secret.example.org",))
    assert policy.check("https://docs.example.org/x") is None
    assert policy.check("http://127.0.0.1:8080/") is None
    assert policy.check("http://2130706433:8080/") is None
    assert "not on the allow list" in str(policy.check("http://127.0.0.1:8081/"))
    assert "deny list" in str(policy.check("https://a.secret.example.org/"))
    assert "not on the allow list" in str(policy.check("https://notexample.org/"))
    # an address entry is not a suffix: 0.0.1 does not match 127.0.0.1
    assert "not on the allow list" in str(DomainPolicy(allow=("0.0.1",)).check("http://127.0.0.1"))
    assert "scheme 'file'" in str(policy.check("file:///etc/passwd"))


@pytest.mark.anyio
async def test_non_public_addresses_need_naming_with_their_port() -> None:
    policy = DomainPolicy(allow_private=("127.0.0.1:8000", "10.0.0.0/8"))
    assert (await policy.admit("127.0.0.1", 8000)).address == "127.0.0.1"
    assert (await policy.admit("0x7f000001", 8000)).address == "127.0.0.1"
    assert (await policy.admit("10.9.8.7", 443)).allowed
    refused = await policy.admit("127.0.0.1", 8001)
    assert refused.reason == "127.0.0.1 is a loopback address, not allowed (port 8001)"
    refused = await policy.admit("localhost", 8000)  # resolves to ::1 as well: not named
    assert "host 'localhost' resolves to ::1" in str(refused.reason)
    assert not (await policy.admit("169.254.169.254", 80)).allowed
    assert not (await DomainPolicy().admit("app.localhost", 80)).allowed


@pytest.mark.anyio
async def test_an_address_entry_of_allow_names_it_and_deny_networks_apply_to_addresses() -> None:
    assert (await DomainPolicy(allow=("127.0.0.1",)).admit("127.0.0.1", 9)).allowed
    denied = await DomainPolicy(allow_private=("127.0.0.0/8",), deny=("127.0.0.2",)).admit(
        "127.0.0.2", 80
    )
    assert "deny list" in str(denied.reason)


# --- the proxy, driven by raw clients ---------------------------------------------------------


class _Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the proxy must close the exchange itself

    def do_GET(self) -> None:
        body = f"origin saw {self.path} connection={self.headers.get('Connection')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "keep-alive")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[int]:
    with serving(_Origin) as port:
        yield port


async def _exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` and read one response as an HTTP client does: the head, then
    Content-Length bytes of body (or up to the end of the stream)."""
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(request)
            received = b""
            try:
                while not _complete(received):
                    received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
            return received


def _complete(received: bytes) -> bool:
    head, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


@pytest.mark.anyio
async def test_the_proxy_forwards_allowed_requests_and_closes_each_exchange(origin: int) -> None:
    async with EgressProxy(DomainPolicy(allow_private=(f"127.0.0.1:{origin}",))) as proxy:
        got = await _exchange(
            proxy.port,
            f"GET http://127.0.0.1:{origin}/page?q=1 HTTP/1.1\r\nHost: x\r\n"
            "Proxy-Connection: keep-alive\r\n\r\n".encode(),
        )
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert b"Connection: close" in head and b"keep-alive" not in head
        assert body == b"origin saw /page?q=1 connection=close"
        assert proxy.connections == 1
        assert proxy.blocked == []


@pytest.mark.anyio
async def test_the_proxy_refuses_and_records(origin: int) -> None:
    async with EgressProxy(DomainPolicy()) as proxy:
        tunnel = await _exchange(
            proxy.port, f"CONNECT localhost:{origin} HTTP/1.1\r\n\r\n".encode()
        )
        assert tunnel.startswith(b"HTTP/1.1 403")
        assert f"{BLOCKED_HEADER}: host 'localhost' resolves to".encode() in tunnel
        page = await _exchange(proxy.port, f"GET http://[::1]:{origin}/ HTTP/1.1\r\n\r\n".encode())
        assert page.startswith(b"HTTP/1.1 403") and b"<title>Blocked</title>" in page
        assert [b.target for b in proxy.blocked] == [
            f"localhost:{origin}",
            f"http://[::1]:{origin}/",
        ]
        assert proxy.connections == 0


@pytest.mark.anyio
async def test_garbage_is_a_bad_request_and_the_proxy_goes_on(origin: int) -> None:
    async with EgressProxy(DomainPolicy(allow_private=(f"127.0.0.1:{origin}",))) as proxy:
        assert (await _exchange(proxy.port, b"\x00\xff nonsense\r\n\r\n")).startswith(
            b"HTTP/1.1 400"
        )
        assert (await _exchange(proxy.port, b"GET /relative HTTP/1.1\r\n\r\n")).startswith(
            b"HTTP/1.1 400"
        )
        huge = b"GET http://127.0.0.1:1/ HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
        assert (await _exchange(proxy.port, huge)).startswith(b"HTTP/1.1 431")
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as half:
            await half.send(b"GET http://127.0.0.1:1/ HTT")  # then hangs up mid-head
        again = await _exchange(
            proxy.port, f"GET http://127.0.0.1:{origin}/ok HTTP/1.1\r\n\r\n".encode()
        )
        assert again.endswith(b"origin saw /ok connection=close")
