"""Where the browser may connect: host lists, and a refusal of non-public addresses.

:class:`DomainPolicy` answers two questions. :meth:`DomainPolicy.check` looks at a URL alone
(scheme, host allow and deny lists); :meth:`DomainPolicy.admit` decides one connection: it
resolves the host once, refuses it when any address is loopback, link-local, private or otherwise
not public (unless such an address is named explicitly), and returns the address that was checked,
so the caller connects to exactly that address (no second resolution a DNS server could answer
differently). Host names are read as a browser reads them: ``0x7f000001``, ``2130706433``,
``0177.0.0.1`` and ``127.1`` are all 127.0.0.1, ``localhost`` and ``*.localhost`` are loopback
without any DNS query, and IPv6 forms that embed an IPv4 address are judged by that address.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import anyio
from pydantic import BaseModel, ConfigDict, Field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_RESOLVE_TIMEOUT_S = 5.0


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """``host`` as an IPv4 address the way browsers parse it (1 to 4 parts, each decimal, octal
    with a leading 0 or hex with 0x; the last part fills the remaining bytes), else ``None``."""
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        number = _ipv4_part(part)
        if number is None:
            return None
        numbers.append(number)
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_part(part: str) -> int | None:
    try:
        if part[:2].lower() == "0x":
            return int(part[2:] or "0", 16)
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def canonical_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets, numeric IPv4 forms as dotted quads."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    ip = ip_literal(host)
    return str(ip) if ip is not None else host


def ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` spells (IPv4 in any browser form, or IPv6), else ``None``."""
    host = host.strip("[]")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            return None
    return parse_ipv4(host)


def non_public(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``"loopback"``, ``"private"``...), or ``None``."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return non_public(embedded)
    for kind in ("unspecified", "loopback", "link_local", "private", "multicast", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "site-local"
    return None if ip.is_global else "non-public"


@dataclass(frozen=True)
class _Entry:
    """One list entry: a host name (matching its subdomains too), an address or a network,
    each with an optional port."""

    name: str | None
    network: IPNetwork | None
    port: int | None

    @classmethod
    def parse(cls, text: str) -> _Entry:
        text = text.strip().lower().lstrip(".")
        host, port = _split_port(text)
        if "/" in host:
            try:
                return cls(None, ipaddress.ip_network(host.strip("[]"), strict=False), port)
            except ValueError:
                pass
        ip = ip_literal(host)
        if ip is not None:
            return cls(None, ipaddress.ip_network(ip), port)
        return cls(host.rstrip("."), None, port)

    def matches_host(self, host: str, port: int | None) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            ip = ip_literal(host)
            return ip is not None and ip in self.network
        assert self.name is not None
        return host == self.name or host.endswith("." + self.name)

    def matches_address(self, ip: IPAddress, port: int) -> bool:
        in_network = self.network is not None and ip in self.network
        return in_network and (self.port is None or self.port == port)


def _split_port(text: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port``, ``v6``, ``net/len`` into host and port."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if port.isdigit():
            return host, int(port)
    return text, None


class Admission(BaseModel):
    """The verdict on one connection: the address to connect to, or why not."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int
    address: str | None = None
    reason: str | None = None

    @property
    def allowed(self) -> bool:
        return self.reason is None


class DomainPolicy(BaseModel):
    """Which hosts may be loaded and which addresses reached.

    ``allow`` empty means every host not denied. An entry is a host name (``example.org`` matches
    ``docs.example.org`` too), an address or a network (``10.0.0.0/8``), each with an optional
    port (``127.0.0.1:8080``, ``[::1]:8080``); deny wins. Whatever the lists say, a host that
    resolves to a loopback, link-local, private or other non-public address is refused unless that
    address is named: by an address or network entry of ``allow``, or of ``allow_private`` (which
    permits those addresses without making ``allow`` a restriction)."""

    model_config = ConfigDict(frozen=True)

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    allow_private: tuple[str, ...] = Field(
        (), description="Non-public addresses or networks (optionally :port) that may be reached."
    )

    @property
    def restricts(self) -> bool:
        return bool(self.allow or self.deny)

    def check(self, url: str) -> str | None:
        """``None`` when the URL's scheme and host pass the lists, else the reason they do not.
        Addresses are judged by :meth:`admit`, which resolves the host."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            return f"scheme {parts.scheme or '(none)'!r} is not allowed (only http and https)"
        host = canonical_host(parts.hostname or "")
        if not host:
            return "the URL has no host"
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            return "the URL has an invalid port"
        return self.check_host(host, port)

    def check_host(self, host: str, port: int | None = None) -> str | None:
        host = canonical_host(host)
        if any(_Entry.parse(e).matches_host(host, port) for e in self.deny):
            return f"host {host!r} is on the deny list"
        if self.allow and not any(_Entry.parse(e).matches_host(host, port) for e in self.allow):
            return f"host {host!r} is not on the allow list"
        return None

    def check_address(self, ip: IPAddress, port: int) -> str | None:
        """``None`` when ``ip:port`` may be reached, else the reason it may not."""
        if any(_Entry.parse(e).matches_address(ip, port) for e in self.deny):
            return f"address {ip} is on the deny list"
        kind = non_public(ip)
        if kind is None:
            return None
        entries = [_Entry.parse(e) for e in self.allow_private + self.allow]
        if any(entry.matches_address(ip, port) for entry in entries):
            return None
        return f"{ip} is a {kind} address, not allowed (port {port})"

    async def admit(self, host: str, port: int) -> Admission:
        """Decide one connection to ``host:port``: host lists, then every address the host
        resolves to. The returned address is the one to connect to."""
        host = canonical_host(host)
        reason = self.check_host(host, port)
        if reason is not None:
            return Admission(host=host, port=port, reason=reason)
        addresses, reason = await resolve(host, port)
        if reason is not None:
            return Admission(host=host, port=port, reason=reason)
        for ip in addresses:
            refused = self.check_address(ip, port)
            if refused is not None:
                said = "" if ip_literal(host) else f"host {host!r} resolves to {ip}; "
                return Admission(host=host, port=port, reason=said + refused)
        return Admission(host=host, port=port, address=str(addresses[0]))

    async def admit_url(self, url: str) -> Admission | str:
        """:meth:`check` then :meth:`admit` for a URL; a string is the reason it is refused."""
        reason = self.check(url)
        if reason is not None:
            return reason
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
        return await self.admit(parts.hostname or "", port)


async def resolve(host: str, port: int) -> tuple[list[IPAddress], str | None]:
    """Every address of ``host`` (literal, ``localhost`` or by DNS), or a reason there is none."""
    literal = ip_literal(host)
    if literal is not None:
        return [literal], None
    if host == "localhost" or host.endswith(".localhost"):
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")], None
    kind: Literal["timeout", "error"] = "error"
    try:
        with anyio.fail_after(_RESOLVE_TIMEOUT_S):
            found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        kind = "timeout"
        found = []
    except OSError:
        found = []
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        said = "timed out" if kind == "timeout" else "found no address"
        return [], f"resolving host {host!r} {said}"
    return addresses, None
