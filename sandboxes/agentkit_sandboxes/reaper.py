"""Removing what dead owners left: sandbox containers, their volumes, egress networks.

Every object carries the owner labels of ``config.owner_labels`` (host, pid, boot id, the pid's
start time); ``owner_is_alive`` tells a live owner from a dead one even when its pid was reused.
"""

from __future__ import annotations

import contextlib

from .config import LABEL, owner_is_alive
from .engine import Engine, EngineError


async def reap_orphans(engine: Engine, *, everything: bool = False) -> int:
    """Remove sandbox containers (and volumes, networks) whose owning process is gone; with
    ``everything=True``, remove all agentkit sandboxes. Returns how many containers went."""
    removed = 0
    for item in await engine.containers_with_label(f"{LABEL}=1"):
        labels = item.get("Labels") or {}
        if everything or not owner_is_alive(labels):
            await engine.container_remove(str(item["Id"]))
            removed += 1
    for volume in await engine.volumes_with_label(f"{LABEL}=1"):
        labels = volume.get("Labels") or {}
        if everything or not owner_is_alive(labels):
            with contextlib.suppress(EngineError):  # still in use by a container
                await engine.volume_remove(str(volume["Name"]))
    for network in await engine.networks_with_label(f"{LABEL}=1"):
        labels = network.get("Labels") or {}
        if everything or not owner_is_alive(labels):
            with contextlib.suppress(EngineError):  # still has live endpoints
                await engine.network_remove(str(network["Id"]))
    return removed
