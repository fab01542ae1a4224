"""Sandboxes: Docker containers for code, Chromium for the web (installed as agentkit_sandboxes).

The Docker pieces are importable from here; the browser pool lives in
``agentkit_sandboxes.browser`` (it needs Playwright).
"""

from __future__ import annotations

from .base import ExecResult, FileEntry, Sandbox, SandboxError
from .config import SandboxConfig
from .docker_sandbox import DockerSandbox
from .egress import EgressPolicy
from .pool import SandboxPool

__all__ = [
    "DockerSandbox",
    "EgressPolicy",
    "ExecResult",
    "FileEntry",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxPool",
]
