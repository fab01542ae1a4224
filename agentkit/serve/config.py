"""The SGLang server command line, as a validated configuration."""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .presets import Gpu, Precision, find_preset


def local_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a server bound to ``host``: a wildcard bind
    is reached on loopback, an IPv6 address goes in brackets."""
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


class SpeculativeConfig(BaseModel):
    """EAGLE speculative decoding with the model's own MTP layer as the draft model.

    GLM-4.5's model card uses 3 steps, top-k 1 and 4 draft tokens. With top-k 1 SGLang needs
    ``num_draft_tokens == num_steps + 1``; leave ``num_draft_tokens`` unset to get that.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: str = "EAGLE"
    num_steps: int = Field(default=3, ge=1, le=16)
    eagle_topk: int = Field(default=1, ge=1, le=16)
    num_draft_tokens: int | None = Field(default=None, ge=2, le=64)

    @property
    def draft_tokens(self) -> int:
        if self.num_draft_tokens is not None:
            return self.num_draft_tokens
        return self.num_steps + 1

    @model_validator(mode="after")
    def _check_topk_one(self) -> SpeculativeConfig:
        if (
            self.eagle_topk == 1
            and self.num_draft_tokens is not None
            and self.num_draft_tokens != self.num_steps + 1
        ):
            raise ValueError(
                f"with eagle_topk=1 num_draft_tokens must be num_steps + 1 = {self.num_steps + 1}, "
                f"got {self.num_draft_tokens}"
            )
        return self

    def args(self) -> list[str]:
        return [
            "--speculative-algorithm",
            self.algorithm,
            "--speculative-num-steps",
            str(self.num_steps),
            "--speculative-eagle-topk",
            str(self.eagle_topk),
            "--speculative-num-draft-tokens",
            str(self.draft_tokens),
        ]


class MultiNodeError(ValueError):
    """The configuration needs several nodes but does not say how they find each other."""


class ServeConfig(BaseModel):
    """Everything ``python -m sglang.launch_server`` is started with.

    A tensor-parallel size larger than one node's GPUs (``gpus_per_node``) spans
    ``ceil(tp_size / gpus_per_node)`` nodes: every node runs the same command with its own
    ``--node-rank``, all pointing at rank 0's ``--dist-init-addr`` (HOST:PORT); rank 0 serves the
    HTTP API. Such a configuration without ``dist_init_addr`` has no command: :meth:`command`
    raises :class:`MultiNodeError` naming the fix.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Readiness endpoints, in the order they are tried. ``/health_generate`` runs a one-token
    #: generation, so it only answers 200 once the model can serve; ``/model_info`` is the
    #: fallback for servers without it.
    ready_paths: ClassVar[tuple[str, ...]] = ("/health_generate", "/model_info")

    model_path: str
    served_model_name: str | None = None
    tp_size: int = Field(default=1, ge=1, le=256)
    tool_call_parser: str | None = "glm45"
    reasoning_parser: str | None = "glm45"
    speculative: SpeculativeConfig | None = SpeculativeConfig()
    mem_fraction_static: float | None = Field(default=0.7, gt=0.0, le=1.0)
    context_length: int | None = Field(default=None, ge=256)
    #: ``--enable-return-routed-experts``: SGLang captures the MoE experts each token was routed
    #: to, so token-mode requests can ask for them (``SGLangTokens(routed_experts=True)``) and
    #: slime can replay the routing in training (rollout routing replay).
    routed_experts: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=30000, ge=1, le=65535)
    extra_args: tuple[str, ...] = ()
    python: str = Field(default_factory=lambda: sys.executable)
    gpus_per_node: int = Field(default=8, ge=1, le=64)
    nnodes: int | None = Field(default=None, ge=1, le=256)
    node_rank: int = Field(default=0, ge=0)
    dist_init_addr: str | None = None

    @model_validator(mode="after")
    def _check_nodes(self) -> ServeConfig:
        nodes = self.nodes
        if self.tp_size % nodes != 0 or self.tp_size // nodes > self.gpus_per_node:
            raise ValueError(
                f"tp_size {self.tp_size} does not split over {nodes} node(s) of "
                f"{self.gpus_per_node} GPUs"
            )
        if self.node_rank >= nodes:
            raise ValueError(f"node_rank {self.node_rank} is not below nnodes {nodes}")
        if self.dist_init_addr is not None:
            host, sep, port = self.dist_init_addr.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(
                    f"dist_init_addr must be HOST:PORT of node 0, got {self.dist_init_addr!r}"
                )
        return self

    @property
    def nodes(self) -> int:
        """How many nodes the server spans."""
        if self.nnodes is not None:
            return self.nnodes
        return math.ceil(self.tp_size / self.gpus_per_node)

    @classmethod
    def for_model(
        cls,
        model: str,
        *,
        precision: Precision | None = None,
        gpu: Gpu = "H100",
        full_context: bool = False,
        model_path: str | None = None,
        tp_size: int | None = None,
        extra_args: Sequence[str] = (),
        **overrides: object,
    ) -> ServeConfig:
        """A configuration from a preset name (``glm-4.5-air``) or any model path.

        ``model_path`` replaces the preset's hub path (e.g. a local copy of the weights);
        ``tp_size`` replaces the model card's size; ``extra_args`` are appended to the preset's
        own flags; other keywords set fields directly.
        """
        preset = find_preset(model, precision)
        fields: dict[str, object] = {}
        if preset is not None:
            fields.update(
                model_path=preset.model_path,
                served_model_name=preset.name,
                tp_size=preset.tp_size(gpu, full_context=full_context),
            )
        else:
            fields["model_path"] = model
        if model_path is not None:
            fields["model_path"] = model_path
        if tp_size is not None:
            fields["tp_size"] = tp_size
        preset_args = preset.extra_args if preset is not None else ()
        fields["extra_args"] = (*preset_args, *extra_args)
        fields.update(overrides)
        return cls.model_validate(fields)

    @property
    def base_url(self) -> str:
        """Where a client on this machine reaches the server."""
        return local_url(self.host, self.port)

    def command(self, node_rank: int | None = None) -> list[str]:
        """The exact argv the server is started with (on ``node_rank``, default this config's)."""
        rank = self.node_rank if node_rank is None else node_rank
        if self.nodes > 1 and self.dist_init_addr is None:
            per_node = self.tp_size // self.nodes
            raise MultiNodeError(
                f"tp_size {self.tp_size} needs {self.nodes} nodes of {per_node} GPUs "
                f"({self.gpus_per_node} per node): pass --dist-init-addr NODE0_HOST:PORT and run "
                "the printed command of each node on that node, or fit one node (--gpu H200, "
                "--precision fp8, a smaller --tp, or --gpus-per-node)"
            )
        if not 0 <= rank < self.nodes:
            raise MultiNodeError(f"node_rank {rank} is not below nnodes {self.nodes}")
        cmd = [self.python, "-m", "sglang.launch_server", "--model-path", self.model_path]
        if self.served_model_name:
            cmd += ["--served-model-name", self.served_model_name]
        cmd += ["--tp-size", str(self.tp_size)]
        if self.tool_call_parser:
            cmd += ["--tool-call-parser", self.tool_call_parser]
        if self.reasoning_parser:
            cmd += ["--reasoning-parser", self.reasoning_parser]
        if self.speculative is not None:
            cmd += self.speculative.args()
        if self.mem_fraction_static is not None:
            cmd += ["--mem-fraction-static", f"{self.mem_fraction_static:g}"]
        if self.context_length is not None:
            cmd += ["--context-length", str(self.context_length)]
        if self.routed_experts:
            cmd += ["--enable-return-routed-experts"]
        if self.nodes > 1:
            assert self.dist_init_addr is not None
            cmd += ["--nnodes", str(self.nodes), "--node-rank", str(rank)]
            cmd += ["--dist-init-addr", self.dist_init_addr]
        cmd += ["--host", self.host, "--port", str(self.port)]
        cmd += list(self.extra_args)
        return cmd

    def node_commands(self) -> list[list[str]]:
        """One argv per node, rank 0 first (a single element on one node)."""
        return [self.command(rank) for rank in range(self.nodes)]

    def shell_command(self, node_rank: int | None = None) -> str:
        return shlex.join(self.command(node_rank))
