"""SGLang's router (``sglang-router``, Rust) in front of several SGLang servers.

The router is one HTTP endpoint for many servers. agentkit's clients send every request of an
episode with the episode's routing key in :data:`ROUTING_KEY_HEADER`; under the router's
``manual`` policy (the default here) a key stays on the server it was first given to, so an
episode's turns keep hitting that server's radix cache, and new keys go to the least loaded
server (``assignment_mode``). ``cache_aware`` routes by prompt prefix instead (no affinity
guarantee, better spread for many short episodes).

The router loads a tokenizer for the served model at start; without ``tokenizer_path`` it asks
the Hugging Face hub for the model's own, so pass a local path on machines without hub access.
"""

from __future__ import annotations

import shlex
import sys
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentkit.models.urls import ROUTING_KEY_HEADER
from agentkit.serve.config import local_url

__all__ = ["ROUTING_KEY_HEADER", "AssignmentMode", "RouterConfig", "RouterPolicy"]

RouterPolicy = Literal["manual", "cache_aware", "power_of_two", "round_robin", "random"]
AssignmentMode = Literal["random", "min_load", "min_group"]


class RouterConfig(BaseModel):
    """Everything ``python -m sglang_router.launch_router`` is started with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worker_urls: tuple[str, ...] = Field(min_length=1)
    host: str = "127.0.0.1"
    port: int = Field(default=30000, ge=1, le=65535)
    policy: RouterPolicy = "manual"
    assignment_mode: AssignmentMode = "min_load"
    tokenizer_path: str | None = None
    extra_args: tuple[str, ...] = ()
    python: str = Field(default_factory=lambda: sys.executable)

    @field_validator("worker_urls")
    @classmethod
    def _urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"worker URL must start with http:// or https://, got {url!r}")
        if len(set(urls)) != len(urls):
            raise ValueError("worker URLs repeat")
        return tuple(u.rstrip("/") for u in urls)

    @property
    def base_url(self) -> str:
        return local_url(self.host, self.port)

    #: The router answers these once it is up (tried in order by the process manager).
    ready_paths: ClassVar[tuple[str, ...]] = ("/readiness", "/health")

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "sglang_router.launch_router"]
        cmd += ["--host", self.host, "--port", str(self.port)]
        cmd += ["--worker-urls", *self.worker_urls]
        cmd += ["--policy", self.policy]
        if self.policy == "manual":
            cmd += ["--assignment-mode", self.assignment_mode]
        if self.tokenizer_path is not None:
            cmd += ["--tokenizer-path", self.tokenizer_path]
        cmd += list(self.extra_args)
        return cmd

    def shell_command(self) -> str:
        return shlex.join(self.command())
