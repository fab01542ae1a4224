"""GRPO rollouts of a coding task in the Docker sandbox, with a test-based reward, exported for
slime and verl.

Each task is a repository with a failing test (``examples/coding_agent/repo`` by default). A
rollout runs ``--n`` samples of it (one GRPO group) in token mode: the agent edits the code in a
hardened container with the code tools; the reward runs the repository's tests in that container
(1.0 when they pass). The store then goes to every trainer format:

    python examples/grpo_coding/run.py --out runs/grpo          # scripted model, test server
    python examples/grpo_coding/run.py --out runs/grpo \\
        --model-url http://127.0.0.1:30000 --tokenizer /models/GLM-4.5   # a real SGLang server

    # then, for slime (debug-rollout format) and verl (agent-loop rows, SFT Parquet):
    python train.py ... --load-debug-rollout-data runs/grpo/slime/{rollout_id}.pt --debug-train-only
    python -m verl.trainer.sft_trainer data.train_files=runs/grpo/verl_sft.parquet \\
        data.custom_cls.path=pkg://agentkit.integrations.verl.sft \\
        data.custom_cls.name=AgentkitMultiTurnSFTDataset ...

Needs a Docker engine and the sandbox image (``agentkit sandbox build-image``). The samples of
a task share one container, reset to the task's baseline commit before each episode, so they run
one at a time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import anyio

from agentkit import Agent, RunResult
from agentkit.models import Model
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.rollout import Reward, RolloutReport, RolloutTask, rollout
from agentkit.testing import PolicyRequest, SGLangTestServer, build_test_tokenizer
from agentkit.trajectory.exports import ExportReport, export
from agentkit_sandboxes.config import SandboxConfig
from agentkit_sandboxes.docker_sandbox import DockerSandbox
from agentkit_sandboxes.engine import Engine
from agentkit_tools.code import DEFAULT_TEST_COMMAND, code_tools

REPO = Path(__file__).resolve().parents[1] / "coding_agent" / "repo"
PROMPT = "The test suite fails. Please fix the code."
INSTRUCTIONS = """\
You are a careful software engineer working in a sandboxed repository (the current directory).
A test fails. Find the cause with the tools, fix the code (do not change the tests), run the
tests until they pass, then say in one sentence what you changed."""
_GIT = "git -c user.name=agent -c user.email=agent@sandbox"


async def prepare(sandbox: DockerSandbox, repo: Path) -> None:
    """Copy the repository in and commit it as the baseline each episode starts from."""
    await sandbox.upload_dir(repo)
    done = await sandbox.exec(f"git init -q && git add -A && {_GIT} commit -q -m baseline")
    if not done.ok:
        raise RuntimeError("could not prepare the repository:\n" + done.render())


async def reset(sandbox: DockerSandbox) -> None:
    done = await sandbox.exec("git reset -q --hard && git clean -qfd")
    if not done.ok:
        raise RuntimeError("could not reset the repository:\n" + done.render())


async def test_reward(task: RolloutTask, result: RunResult[Any]) -> Reward:
    """1.0 when the repository's tests pass in the episode's container, else 0.0."""
    tests = await task.deps.exec(DEFAULT_TEST_COMMAND, timeout=300)
    return Reward(value=1.0 if tests.ok else 0.0, components={"tests_passed": tests.ok})


async def grpo_rollout(
    model: Model,
    store: Path,
    *,
    repos: list[Path],
    n: int,
    config: SandboxConfig | None = None,
) -> RolloutReport:
    """``n`` samples of every repository's task into ``store``, each scored by its tests."""
    agent: Agent[DockerSandbox, str] = Agent(
        model=model, instructions=INSTRUCTIONS, tools=code_tools(), max_turns=12
    )
    async with Engine() as engine:
        boxes = [await DockerSandbox.create(engine, config or SandboxConfig()) for _ in repos]
        try:
            tasks = []
            for k, (repo, box) in enumerate(zip(repos, boxes, strict=True)):
                await prepare(box, repo)
                tasks.append(RolloutTask(id=f"{repo.name}-{k}", prompt=PROMPT, deps=box))

            async def fresh_agent(task: RolloutTask) -> Agent[DockerSandbox, str]:
                await reset(task.deps)  # every attempt starts from the baseline
                return agent

            return await rollout(
                fresh_agent, tasks, n_per_task=n, concurrency=1, reward_fn=test_reward,
                store=store, progress=False,
            )  # fmt: skip
        finally:
            for box in boxes:
                await box.destroy()


def export_all(store: Path, out: Path) -> dict[str, ExportReport]:
    """The store in every trainer format under ``out``."""
    reports = {
        "slime": export([*_finished(store)], out / "slime.jsonl", "slime"),
        "verl": export([*_finished(store)], out / "verl.jsonl", "verl"),
    }
    try:
        from agentkit.integrations.slime.pt import store_to_debug_rollout

        _, reports["slime.pt"] = store_to_debug_rollout(store, out / "slime" / "{rollout_id}.pt")
    except ImportError as exc:  # torch is slime's dependency, not agentkit's
        print(f"skipped the slime .pt file: {exc}", file=sys.stderr)
    from agentkit.integrations.verl.sft import write_verl_sft

    reports["verl_sft"] = write_verl_sft(_finished(store), out / "verl_sft.parquet")
    return reports


def _finished(store: Path) -> list[Any]:
    from agentkit.trajectory.store import read_store

    return list(read_store(store).finished)


class ScriptedEngineer:
    """A scripted stand-in for GLM-4.5: fixes the bug in every other episode and gives up in
    the rest, so a GRPO group has rewards to compare."""

    def __init__(self) -> None:
        self.episodes = 0

    def __call__(self, request: PolicyRequest) -> str:
        turn = request.assistant_turns
        seen = str((request.last_message or {}).get("content", ""))
        if turn == 0:
            self.episodes += 1
            return "<think>Run the tests.</think>\n" + _call("run_tests")
        if turn == 1:
            return "<think>Read calculator.py.</think>\n" + _call("read_file", path="calculator.py")
        if turn == 2:
            if self.episodes % 2 == 0 or "return a - b" not in seen:
                return "<think>Not sure.</think>\nI could not fix it."
            return "<think>add subtracts.</think>\n" + _call(
                "edit_file", path="calculator.py", old="return a - b", new="return a + b"
            )
        if turn == 3:
            return "<think>Check.</think>\n" + _call("run_tests")
        return "<think>Done.</think>\nadd() now returns a + b."


def _call(name: str, **arguments: str) -> str:
    args = "".join(
        f"<arg_key>{k}</arg_key>\n<arg_value>{v}</arg_value>\n" for k, v in arguments.items()
    )
    return f"<tool_call>{name}\n{args}</tool_call>"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/grpo"))
    parser.add_argument("--n", type=int, default=4, help="samples per task (the GRPO group)")
    parser.add_argument("--repo", type=Path, action="append", help="a repository (repeatable)")
    parser.add_argument("--model-url", help="an SGLang server with GLM-4.5 (token mode)")
    parser.add_argument("--tokenizer", help="the model's tokenizer (folder or tokenizer.json)")
    args = parser.parse_args()
    repos = args.repo or [REPO]
    store = args.out / "run.jsonl"
    args.out.mkdir(parents=True, exist_ok=True)
    if args.model_url:
        if not args.tokenizer:
            parser.error("--model-url needs --tokenizer")
        model = SGLangTokens(args.model_url, args.tokenizer)
        try:
            report = await grpo_rollout(model, store, repos=repos, n=args.n)
        finally:
            await model.aclose()
    else:
        print("no --model-url: the scripted model on the SGLang test server", file=sys.stderr)
        async with SGLangTestServer(policy=ScriptedEngineer()) as server:
            model = SGLangTokens(server.base_url, build_test_tokenizer())
            try:
                report = await grpo_rollout(model, store, repos=repos, n=args.n)
            finally:
                await model.aclose()
    print(f"rollout: {report.completed}/{report.planned} completed, {len(report.failures)} failed")
    for name, exported in export_all(store, args.out).items():
        print(
            f"{name}: {exported.rows} rows from {exported.exported_episodes} episodes, "
            f"{len(exported.dropped_groups)} groups dropped"
        )
    return 0 if not report.failures else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main))
