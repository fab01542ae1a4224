"""Network opt-in through the egress allow-list, against the real engine.

Only servers this test starts are involved: two small HTTP servers in containers on a Docker
network the test creates ("upstream"); one is on the allow-list, one is not. The sandbox itself
stays on ``network="none"``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from agentkit_sandboxes.base import SandboxError
from agentkit_sandboxes.config import LABEL, SandboxConfig, owner_labels
from agentkit_sandboxes.docker_sandbox import DockerSandbox
from agentkit_sandboxes.egress import EgressPolicy
from agentkit_sandboxes.egress_inside import address_ok, parse_target, rule_matches
from agentkit_sandboxes.engine import Engine
from tests.sandbox_support import TEST_CONFIG

# A tiny HTTP server that answers with its name (runs in the upstream containers).
SERVER = r"""
import http.server, sys
name = sys.argv[1].encode()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header('Content-Length', str(len(name)))
        self.end_headers(); self.wfile.write(name)
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(('0.0.0.0', 8000), Handler).serve_forever()
"""

FETCH = r"""
import sys, urllib.request, urllib.error
for url in sys.argv[1:]:
    try:
        print(url, urllib.request.urlopen(url, timeout=10).read().decode())
    except urllib.error.HTTPError as exc:
        print(url, exc.code)
    except OSError as exc:
        print(url, 'error', type(exc).__name__)
"""

TUNNEL = r"""
import socket, sys
s = socket.create_connection(('127.0.0.1', 3128), timeout=10)
s.sendall(f'CONNECT {sys.argv[1]} HTTP/1.1\r\nHost: {sys.argv[1]}\r\n\r\n'.encode())
head = s.recv(4096).split(b'\r\n')[0].decode()
print(head)
if ' 200 ' in head + ' ':
    s.sendall(b'GET / HTTP/1.0\r\n\r\n')
    reply = b''
    while chunk := s.recv(4096):
        reply += chunk
    print(reply.split(b'\r\n\r\n', 1)[1].decode())
"""

DIRECT = r"""
import socket, sys
print(sorted(n for _, n in socket.if_nameindex()))
s = socket.socket(); s.settimeout(3)
try:
    s.connect((sys.argv[1], 8000)); print('connected')
except OSError:
    print('unreachable')
"""


def test_rules_and_addresses() -> None:
    assert rule_matches("pypi.org", "PyPI.org", 443) and rule_matches("pypi.org", "pypi.org", 80)
    assert not rule_matches("pypi.org", "pypi.org", 8080)
    assert rule_matches("host.test:8000", "host.test", 8000)
    assert not rule_matches("host.test:8000", "other.test", 8000)
    assert rule_matches("*.example.com", "a.b.example.com", 443)
    assert not rule_matches("*.example.com", "example.com.evil.net", 443)
    assert not rule_matches("*.example.com", "badexample.com", 443)
    assert parse_target("CONNECT", "host.test:443") == ("host.test", 443, "")
    assert parse_target("GET", "http://host.test:8000/a?b") == ("host.test", 8000, "/a?b")
    assert parse_target("GET", "http://host.test") == ("host.test", 80, "/")
    assert parse_target("GET", "/relative") is None
    assert not address_ok("127.0.0.1", True) and not address_ok("169.254.169.254", True)
    assert not address_ok("::1", True) and not address_ok("0.0.0.0", True)
    assert not address_ok("172.18.0.2", False) and address_ok("172.18.0.2", True)
    assert address_ok("93.184.216.34", False)
    with pytest.raises(ValidationError):
        EgressPolicy(allow=("bad rule/with slash",))
    with pytest.raises(ValidationError):
        EgressPolicy(allow=("a.test",), network="host")
    with pytest.raises(ValidationError):
        SandboxConfig(network="mynet", egress=EgressPolicy(allow=("a.test",)))


@pytest.fixture(name="upstream")
async def upstream_fixture(engine: Engine) -> AsyncIterator[dict[str, str]]:
    """A Docker network with two named HTTP servers; yields their names and addresses."""
    name = f"agentkit-test-up-{secrets.token_hex(4)}"
    labels = {**owner_labels(), LABEL: "1"}
    net = await engine.network_create(name, labels, internal=False)
    servers: list[str] = []
    try:
        for who in ("allowed.test", "denied.test"):
            spec = {
                "Image": TEST_CONFIG.image,
                "Cmd": ["python3", "-I", "-c", SERVER, who],
                "User": "65532:65532",
                "Labels": labels,
                "HostConfig": {
                    "NetworkMode": name,
                    "ReadonlyRootfs": True,
                    "CapDrop": ["ALL"],
                    "SecurityOpt": ["no-new-privileges"],
                },
                "NetworkingConfig": {"EndpointsConfig": {name: {"Aliases": [who]}}},
            }
            cid = await engine.container_create(f"{name}-{who.split('.')[0]}", spec)
            servers.append(cid)
            await engine.container_start(cid)
        info = await engine.network_inspect(net)
        addresses = {
            c["Name"].rsplit("-", 1)[1]: c["IPv4Address"].split("/")[0]
            for c in info["Containers"].values()
        }
        yield {"network": name, **addresses}
    finally:
        for cid in servers:
            await engine.container_remove(cid)
        await engine.network_remove(net)


@pytest.mark.docker
@pytest.mark.anyio
async def test_allowed_host_is_reached_and_others_are_not(
    engine: Engine, upstream: dict[str, str]
) -> None:
    policy = EgressPolicy(
        allow=("allowed.test:8000",), network=upstream["network"], allow_private=True
    )
    box = await DockerSandbox.create(engine, TEST_CONFIG.model_copy(update={"egress": policy}))
    try:
        fetched = await box.exec(
            ["python3", "-c", FETCH, "http://allowed.test:8000/", "http://denied.test:8000/"]
        )
        assert fetched.stdout.splitlines() == [
            "http://allowed.test:8000/ allowed.test",
            "http://denied.test:8000/ 403",
        ], fetched.render()
        tunnel = await box.exec(["python3", "-c", TUNNEL, "allowed.test:8000"])
        assert tunnel.stdout.splitlines()[1:] == ["allowed.test"], tunnel.render()
        refused = await box.exec(["python3", "-c", TUNNEL, "denied.test:8000"])
        assert " 403 " in refused.stdout, refused.render()
        # no way around the proxy: the sandbox has no interface but loopback
        direct = await box.exec(["python3", "-c", DIRECT, upstream["denied"]])
        assert direct.stdout.splitlines() == ["['lo']", "unreachable"], direct.render()
    finally:
        await box.destroy()
    left = await engine.containers_with_label(f"{LABEL}=1")
    assert not any(box.volume in name for c in left for name in c.get("Names", []))


@pytest.mark.docker
@pytest.mark.anyio
async def test_a_missing_egress_network_is_a_clear_error(engine: Engine) -> None:
    policy = EgressPolicy(allow=("a.test",), network="agentkit-no-such-network")
    with pytest.raises(SandboxError, match="docker network create"):
        await DockerSandbox.create(engine, TEST_CONFIG.model_copy(update={"egress": policy}))


@pytest.mark.docker
@pytest.mark.anyio
async def test_private_addresses_need_the_opt_in(engine: Engine, upstream: dict[str, str]) -> None:
    policy = EgressPolicy(allow=("allowed.test:8000",), network=upstream["network"])
    box = await DockerSandbox.create(engine, TEST_CONFIG.model_copy(update={"egress": policy}))
    try:
        fetched = await box.exec(["python3", "-c", FETCH, "http://allowed.test:8000/"])
        assert fetched.stdout.splitlines() == ["http://allowed.test:8000/ 403"], fetched.render()
    finally:
        await box.destroy()
