"""Network opt-in with an allow-list: a sandbox that stays offline, talking through a proxy.

With ``SandboxConfig(egress=EgressPolicy(allow=[...]))`` the sandbox keeps ``network="none"``
(loopback only). A second, equally hardened container, the egress proxy, sits on the upstream
Docker network (``EgressPolicy.network``) and listens on a unix socket in a small tmpfs volume
that both containers mount. Inside the sandbox the keeper user's forwarder listens on
``127.0.0.1:3128`` and pipes to that socket; ``HTTP_PROXY`` / ``HTTPS_PROXY`` point there. The
proxy serves only allowed hosts (see ``egress_inside.py``). Nothing else leaves the sandbox: it
has no network interface to send on, with or without iptables.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .base import SandboxError
from .engine import Engine, EngineError

SOURCE = Path(__file__).with_name("egress_inside.py").read_text()
SOCKET_DIR = "/run/agentkit-egress"
SOCKET = f"{SOCKET_DIR}/proxy.sock"
_RULE = re.compile(r"^(\*\.)?[A-Za-z0-9_.-]+(:\d{1,5})?$")


class EgressPolicy(BaseModel):
    """Which hosts a sandbox may reach, through which Docker network."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allow: tuple[str, ...] = Field(min_length=1)
    """``host`` (ports 80 and 443), ``host:port``, ``*.domain`` (its subdomains)."""
    network: str = "bridge"
    """The Docker network the proxy container reaches the allowed hosts through."""
    allow_private: bool = False
    """Also connect to private addresses (other containers, a LAN); loopback and link-local
    addresses are refused always."""
    port: int = Field(default=3128, ge=1, le=65535)
    """The proxy's port on the sandbox's loopback."""

    @field_validator("allow")
    @classmethod
    def _check_rules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for rule in value:
            if not _RULE.match(rule):
                raise ValueError(f"not a host rule: {rule!r} (use host, host:port or *.domain)")
        return value

    @field_validator("network")
    @classmethod
    def _check_network(cls, value: str) -> str:
        if value in ("host", "none") or value.startswith("container:"):
            raise ValueError(f"the egress proxy needs a real Docker network, not {value!r}")
        return value

    def env(self) -> dict[str, str]:
        """Proxy variables for the sandbox's commands."""
        url = f"http://127.0.0.1:{self.port}"
        return {
            "HTTP_PROXY": url,
            "HTTPS_PROXY": url,
            "http_proxy": url,
            "https_proxy": url,
            "NO_PROXY": "",
            "no_proxy": "",
        }

    def forwarder_cmd(self) -> list[str]:
        return ["python3", "-I", "-c", SOURCE, "forward", "127.0.0.1", str(self.port), SOCKET]


def proxy_spec(
    policy: EgressPolicy, image: str, labels: dict[str, str], volume: str
) -> dict[str, Any]:
    """The Engine API body of a sandbox's egress proxy container (hardened like the sandbox)."""
    rules = json.dumps({"allow": list(policy.allow), "allow_private": policy.allow_private})
    memory = 64 * 1024**2
    return {
        "Image": image,
        "Cmd": ["python3", "-I", "-c", SOURCE, "proxy", SOCKET, rules],
        "User": "65532:65532",
        "WorkingDir": "/",
        "Labels": labels,
        "HostConfig": {
            "Init": True,
            "NetworkMode": policy.network,
            "ReadonlyRootfs": True,
            "Mounts": [{"Type": "volume", "Source": volume, "Target": SOCKET_DIR}],
            "Memory": memory,
            "MemorySwap": memory,
            "NanoCpus": int(0.5e9),
            "PidsLimit": 32,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "Privileged": False,
        },
    }


async def start_proxy(
    engine: Engine, policy: EgressPolicy, image: str, labels: dict[str, str], name: str
) -> str:
    """Create the socket volume and start the proxy container; returns the volume name (the
    container is ``name``). Leaves nothing behind when it fails."""
    volume = f"{name}-sock"
    try:
        await engine.volume_create(volume, labels, "size=1m,uid=65532,gid=65532,mode=0755")
        cid = await engine.container_create(name, proxy_spec(policy, image, labels, volume))
        await engine.container_start(cid)
    except BaseException as exc:
        await stop_proxy(engine, name)
        if isinstance(exc, EngineError) and exc.status == 404 and "network" in exc.message:
            raise SandboxError(
                f"egress network {policy.network!r} not found: create it "
                "('docker network create NAME') or name another in EgressPolicy(network=...)"
            ) from exc
        raise
    return volume


async def stop_proxy(engine: Engine, name: str) -> None:
    """Remove a proxy container and its socket volume (absent ones are fine)."""
    try:
        await engine.container_remove(name)
    finally:
        try:
            await engine.volume_remove(f"{name}-sock")
        except EngineError as exc:
            if exc.status != 409:
                raise
