"""``agentkit serve``: launch SGLang for GLM-4.5 with the right parsers and speculative decoding.

``app`` is a typer app whose callback is the command itself, so it can be mounted with
``main_app.add_typer(app, name="serve")``.
"""

from __future__ import annotations

import shlex
import signal
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import anyio
import typer
from pydantic import ValidationError

from .config import MultiNodeError, ServeConfig, SpeculativeConfig
from .fleet import FleetPlan, SGLangFleet, plan_fleet
from .presets import PRESETS
from .process import SGLangServer, SGLangServerError
from .router import RouterPolicy

app = typer.Typer(
    help="Launch an SGLang server for GLM-4.5 / GLM-4.5-Air (or any model path).",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
)

_PRESET_NAMES = ", ".join(PRESETS)
T = TypeVar("T", bound=str)
P = TypeVar("P")


# The command's options, one alias each (typer reads the flag and help from the annotation).
Model = Annotated[str, typer.Option(help=f"Preset ({_PRESET_NAMES}) or any model path.")]
Precision = Annotated[
    str | None, typer.Option(help="bf16 or fp8 (picks the preset's other checkpoint).")
]
Gpu = Annotated[str, typer.Option(help="H100 or H200: sets the preset's tensor-parallel size.")]
FullContext = Annotated[bool, typer.Option(help="Double the GPUs for the full 128K context.")]
ModelPath = Annotated[
    str | None, typer.Option(help="Weights location overriding the preset (e.g. a local copy).")
]
Tp = Annotated[int | None, typer.Option(help="Tensor-parallel size override.")]
Speculative = Annotated[
    bool, typer.Option(help="EAGLE speculative decoding with the model's MTP layer.")
]
SpecAlgorithm = Annotated[str, typer.Option(help="--speculative-algorithm")]
SpecSteps = Annotated[int, typer.Option(help="--speculative-num-steps")]
SpecTopk = Annotated[int, typer.Option(help="--speculative-eagle-topk")]
SpecDraftTokens = Annotated[
    int | None,
    typer.Option(help="--speculative-num-draft-tokens (default: steps + 1 with top-k 1)."),
]
MemFraction = Annotated[float, typer.Option(help="--mem-fraction-static")]
ContextLength = Annotated[int | None, typer.Option(help="--context-length")]
ToolCallParser = Annotated[str, typer.Option(help="--tool-call-parser ('' for none)")]
ReasoningParser = Annotated[str, typer.Option(help="--reasoning-parser ('' for none)")]
RoutedExperts = Annotated[
    bool,
    typer.Option(help="--enable-return-routed-experts: MoE routing for slime's routing replay."),
]
Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]
Extra = Annotated[
    list[str] | None,
    typer.Option("--extra", help="One more raw flag for launch_server (repeatable)."),
]
ReadyTimeout = Annotated[float, typer.Option(help="Seconds to wait for readiness.")]
GpusPerNode = Annotated[int, typer.Option(help="GPUs on each node.")]
Nnodes = Annotated[
    int | None, typer.Option(help="Nodes to span (default: tp / gpus-per-node, rounded up).")
]
NodeRank = Annotated[int, typer.Option(help="This node's rank (0 serves HTTP).")]
DistInitAddr = Annotated[
    str | None, typer.Option(help="HOST:PORT of node 0, needed when the server spans nodes.")
]
Replicas = Annotated[
    int, typer.Option(help="Servers on this node; more than 1 puts sglang-router on --port.")
]
RouterPolicyOption = Annotated[
    str, typer.Option(help="Router policy: manual (episode affinity), cache_aware, ...")
]
RouterTokenizer = Annotated[
    str | None, typer.Option(help="Local tokenizer path for the router (else the hub's).")
]
DryRun = Annotated[bool, typer.Option(help="Print the exact command (one per node) and exit.")]


@app.callback()
def serve(
    model: Model = "glm-4.5-air",
    precision: Precision = None,
    gpu: Gpu = "H100",
    full_context: FullContext = False,
    model_path: ModelPath = None,
    tp: Tp = None,
    speculative: Speculative = True,
    spec_algorithm: SpecAlgorithm = "EAGLE",
    spec_steps: SpecSteps = 3,
    spec_topk: SpecTopk = 1,
    spec_draft_tokens: SpecDraftTokens = None,
    mem_fraction: MemFraction = 0.7,
    context_length: ContextLength = None,
    tool_call_parser: ToolCallParser = "glm45",
    reasoning_parser: ReasoningParser = "glm45",
    routed_experts: RoutedExperts = False,
    host: Host = "127.0.0.1",
    port: Port = 30000,
    extra: Extra = None,
    ready_timeout: ReadyTimeout = 1800.0,
    gpus_per_node: GpusPerNode = 8,
    nnodes: Nnodes = None,
    node_rank: NodeRank = 0,
    dist_init_addr: DistInitAddr = None,
    replicas: Replicas = 1,
    router_policy: RouterPolicyOption = "manual",
    router_tokenizer: RouterTokenizer = None,
    dry_run: DryRun = False,
) -> None:
    """Start the server, wait until it serves, stream its log, and stop it on Ctrl-C."""
    try:
        config = ServeConfig.for_model(
            model,
            precision=_literal(precision, ("bf16", "fp8"), "--precision"),
            gpu=_literal(gpu.upper(), ("H100", "H200"), "--gpu") or "H100",
            full_context=full_context,
            model_path=model_path,
            tp_size=tp,
            extra_args=extra or (),
            speculative=(
                SpeculativeConfig(
                    algorithm=spec_algorithm,
                    num_steps=spec_steps,
                    eagle_topk=spec_topk,
                    num_draft_tokens=spec_draft_tokens,
                )
                if speculative
                else None
            ),
            mem_fraction_static=mem_fraction,
            context_length=context_length,
            routed_experts=routed_experts,
            tool_call_parser=tool_call_parser or None,
            reasoning_parser=reasoning_parser or None,
            host=host,
            port=port,
            gpus_per_node=gpus_per_node,
            nnodes=nnodes,
            node_rank=node_rank,
            dist_init_addr=dist_init_addr,
        )
        fleet = _fleet_plan(config, replicas, router_policy, router_tokenizer)
    except ValidationError as exc:
        raise typer.BadParameter(_first_error(exc)) from None
    except (MultiNodeError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    if dry_run:
        _print_commands(config, fleet)
    elif fleet is not None:
        _launch(_run_fleet, fleet, ready_timeout)
    else:
        _launch(_run, config, ready_timeout)


def _fleet_plan(
    config: ServeConfig, replicas: int, router_policy: str, router_tokenizer: str | None
) -> FleetPlan | None:
    """The replicas behind sglang-router (``--replicas`` above 1), else ``None``.

    The config's node commands are built first, so a multi-node mistake is reported as such.
    """
    config.node_commands()
    if replicas <= 1:
        return None
    return plan_fleet(
        config,
        replicas,
        policy=_literal(router_policy, _ROUTER_POLICIES, "--router-policy") or "manual",
        tokenizer_path=router_tokenizer,
    )


def _print_commands(config: ServeConfig, fleet: FleetPlan | None) -> None:
    """``--dry-run``: the exact commands, one per replica or per node."""
    if fleet is not None:
        for env, argv in fleet.commands():
            prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
            typer.echo(f"{prefix} {shlex.join(argv)}" if prefix else shlex.join(argv))
        return
    commands = config.node_commands()
    if len(commands) == 1:
        typer.echo(config.shell_command())
        return
    for rank in range(len(commands)):
        typer.echo(f"# node {rank} of {len(commands)}")
        typer.echo(config.shell_command(rank))


_ROUTER_POLICIES: tuple[RouterPolicy, ...] = (
    "manual",
    "cache_aware",
    "power_of_two",
    "round_robin",
    "random",
)


def _launch(run: Callable[[P, float], Awaitable[None]], what: P, ready_timeout: float) -> None:
    try:
        anyio.run(run, what, ready_timeout)
    except SGLangServerError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def _run(config: ServeConfig, ready_timeout: float) -> None:
    typer.echo(f"$ {config.shell_command()}", err=True)
    async with SGLangServer(config, ready_timeout=ready_timeout, log=typer.echo) as server:
        typer.echo(
            f"agentkit: SGLang ready at {server.base_url} (checked {server.ready_path}); "
            "Ctrl-C stops it",
            err=True,
        )
        await _serve_until_stopped(server.wait_exited)


async def _run_fleet(plan: FleetPlan, ready_timeout: float) -> None:
    for env, argv in plan.commands():
        typer.echo(f"$ {' '.join(f'{k}={v}' for k, v in env.items())} {shlex.join(argv)}", err=True)
    async with SGLangFleet(plan, ready_timeout=ready_timeout, log=typer.echo) as fleet:
        typer.echo(
            f"agentkit: {len(plan.servers)} SGLang servers ready behind the router at "
            f"{fleet.base_url}; Ctrl-C stops them",
            err=True,
        )
        await _serve_until_stopped(fleet.wait_exited)


async def _serve_until_stopped(exited: Callable[[], Awaitable[None]]) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:

            async def stop_on_signal() -> None:
                async for _ in signals:
                    tg.cancel_scope.cancel()
                    return

            async def stop_on_exit() -> None:
                await exited()
                tg.cancel_scope.cancel()

            tg.start_soon(stop_on_signal)
            tg.start_soon(stop_on_exit)


def _literal(value: str | None, allowed: tuple[T, ...], flag: str) -> T | None:
    if value is None:
        return None
    for option in allowed:
        if value == option:
            return option
    raise typer.BadParameter(f"{flag} must be one of {', '.join(allowed)}, got {value!r}")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])
