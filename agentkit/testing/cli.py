"""``agentkit testing serve``: run the SGLang test server as a process (prints ``READY url``)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .faults import Fault, FaultKind
from .policy import Policy
from .server import SGLangTestServer

app = typer.Typer(help="The SGLang test server (scripted GLM-4.5 policies).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """The SGLang test server (scripted GLM-4.5 policies)."""


def load_policy(spec: str) -> Policy:
    """Import ``package.module:attribute``: a list of completions or a policy callable."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise typer.BadParameter("expected 'package.module:attribute'", param_hint="--policy")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise typer.BadParameter(
            f"cannot import {module_name!r}: {exc}", param_hint="--policy"
        ) from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise typer.BadParameter(
                f"{module_name!r} has no attribute {attribute!r}", param_hint="--policy"
            )
        target = getattr(target, part)
    if isinstance(target, str) or not (callable(target) or isinstance(target, list | tuple)):
        raise typer.BadParameter(
            "the policy must be a list of completions or a callable", param_hint="--policy"
        )
    return target  # type: ignore[no-any-return]


def parse_fault(spec: str) -> Fault:
    """``KIND`` (once), ``KIND:N`` (the next N requests) or ``KIND:always``."""
    kind_text, _, times_text = spec.partition(":")
    try:
        kind = FaultKind(kind_text.strip())
    except ValueError:
        names = ", ".join(k.value for k in FaultKind)
        raise typer.BadParameter(
            f"unknown fault {kind_text!r}; one of {names}", param_hint="--fault"
        ) from None
    times: int | None = 1
    if times_text == "always":
        times = None
    elif times_text:
        if not times_text.isdigit() or int(times_text) < 1:
            raise typer.BadParameter(
                f"{spec!r}: the count must be a positive integer or 'always'", param_hint="--fault"
            )
        times = int(times_text)
    return Fault(kind, times=times, revive_after_s=None if times is None else 0.2)


@app.command()
def serve(
    policy: Annotated[str, typer.Option(help="package.module:attribute (list or callable)")],
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0 = a free one)")] = 0,
    tokenizer: Annotated[
        Path | None, typer.Option(help="tokenizer.json (default: test tokenizer)")
    ] = None,
    model: Annotated[str, typer.Option(help="served model name")] = "glm-4.5-test",
    latency: Annotated[float, typer.Option(help="seconds slept per generation request")] = 0.0,
    chunk_delay: Annotated[float, typer.Option(help="seconds between streamed chunks")] = 0.0,
    accept_length: Annotated[
        float, typer.Option(help="simulated EAGLE accept length (0 = off)")
    ] = 2.0,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="inject a fault: KIND, KIND:N (N requests) or KIND:always; repeatable"),
    ] = None,
) -> None:
    """Serve until interrupted; prints ``READY http://HOST:PORT`` once it accepts requests."""
    faults = [parse_fault(spec) for spec in fault or []]
    server = SGLangTestServer(
        load_policy(policy),
        tokenizer=tokenizer,
        host=host,
        port=port,
        model=model,
        latency_s=latency,
        chunk_delay_s=chunk_delay,
        accept_length=accept_length or None,
    )

    for item in faults:
        server.inject(item)

    def ready(url: str) -> None:
        sys.stdout.write(f"READY {url}\n")
        sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(on_ready=ready))
