"""Several SGLang servers on one node behind SGLang's router.

``plan_fleet`` splits one node's GPUs into ``replicas`` servers of the preset's tensor-parallel
size (``CUDA_VISIBLE_DEVICES`` slices, consecutive ports after the router's) and puts
``sglang-router`` on the configured port in front of them; :class:`SGLangFleet` runs the plan:
all servers load at once, the router starts once every server is ready, and everything stops
together. Clients talk to the router only (:attr:`SGLangFleet.base_url`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

import anyio
from pydantic import BaseModel, ConfigDict

from .config import MultiNodeError, ServeConfig
from .process import LogSink, SGLangServer, SGLangServerError, _stderr_sink
from .router import RouterConfig, RouterPolicy


class FleetPlan(BaseModel):
    """What a fleet runs: servers (each with its environment) and the router."""

    model_config = ConfigDict(frozen=True)

    servers: tuple[ServeConfig, ...]
    envs: tuple[dict[str, str], ...]
    router: RouterConfig

    def commands(self) -> list[tuple[dict[str, str], list[str]]]:
        """(environment, argv) per process: the servers, then the router."""
        out = [(dict(env), cfg.command()) for cfg, env in zip(self.servers, self.envs, strict=True)]
        out.append(({}, self.router.command()))
        return out


def plan_fleet(
    config: ServeConfig,
    replicas: int,
    *,
    policy: RouterPolicy = "manual",
    tokenizer_path: str | None = None,
) -> FleetPlan:
    """``replicas`` copies of ``config`` on one node behind a router on ``config.port``."""
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    if config.nodes > 1:
        raise MultiNodeError(
            f"one replica of tp_size {config.tp_size} spans {config.nodes} nodes; start each "
            "replica's nodes with --dist-init-addr and put a router in front of their rank-0 URLs"
        )
    needed = replicas * config.tp_size
    if needed > config.gpus_per_node:
        raise ValueError(
            f"{replicas} replicas of tp_size {config.tp_size} need {needed} GPUs; a node has "
            f"{config.gpus_per_node} (--gpus-per-node)"
        )
    if config.port + replicas > 65535:
        raise ValueError(f"ports {config.port}..{config.port + replicas} do not fit")
    servers: list[ServeConfig] = []
    envs: list[dict[str, str]] = []
    for i in range(replicas):
        gpus = range(i * config.tp_size, (i + 1) * config.tp_size)
        servers.append(config.model_copy(update={"port": config.port + 1 + i}))
        envs.append({"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in gpus)})
    router = RouterConfig(
        worker_urls=tuple(s.base_url for s in servers),
        host=config.host,
        port=config.port,
        policy=policy,
        tokenizer_path=tokenizer_path,
        python=config.python,
    )
    return FleetPlan(servers=tuple(servers), envs=tuple(envs), router=router)


class SGLangFleet:
    """``async with SGLangFleet(plan) as fleet:`` — the router answers at ``fleet.base_url``."""

    def __init__(
        self,
        plan: FleetPlan,
        *,
        ready_timeout: float = 1800.0,
        log: LogSink | None = _stderr_sink,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.plan = plan
        base = dict(env or {})
        self.servers = [
            SGLangServer(cfg, ready_timeout=ready_timeout, log=log, env={**base, **extra})
            for cfg, extra in zip(plan.servers, plan.envs, strict=True)
        ]
        self.router = SGLangServer(plan.router, ready_timeout=ready_timeout, log=log, env=base)

    @property
    def base_url(self) -> str:
        return self.plan.router.base_url

    @property
    def processes(self) -> list[SGLangServer]:
        return [*self.servers, self.router]

    async def __aenter__(self) -> SGLangFleet:
        try:
            for server in self.servers:
                await server.launch()
            await _all_ready(self.servers)
            await self.router.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop the router first (no new requests), then every server."""
        for process in reversed(self.processes):
            await process.stop()

    async def wait_exited(self) -> None:
        """Return once any process of the fleet has exited."""
        async with anyio.create_task_group() as tg:

            async def watch(process: SGLangServer) -> None:
                await process.wait_exited()
                tg.cancel_scope.cancel()

            for process in self.processes:
                tg.start_soon(watch, process)


async def _all_ready(servers: list[SGLangServer]) -> None:
    """Wait for every server; the first failure is raised as itself, not as a group."""
    failures: list[SGLangServerError] = []
    async with anyio.create_task_group() as tg:

        async def ready(server: SGLangServer) -> None:
            try:
                await server.wait_ready()
            except SGLangServerError as exc:
                failures.append(exc)
                tg.cancel_scope.cancel()

        for server in servers:
            tg.start_soon(ready, server)
    if failures:
        raise failures[0]
