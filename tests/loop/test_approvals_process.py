"""Pause in one process, resume in another: the run ends as an uninterrupted one would.

The test starts the SGLang test server here; a first subprocess runs the agent until it pauses
for approval and writes the state (JSON) and the store; a second subprocess reads the state
and resumes with a decision into the same store. The result is compared with an uninterrupted
run in this process (same messages; in token mode the same token ids on the wire), and the
store holds one continuous episode. This file is also the subprocesses' script.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest

from agentkit import Agent, EpisodeStatus, Tool
from agentkit.approvals import ApprovalDecision
from agentkit.dialects.glm45 import format_assistant
from agentkit.messages import ToolMessage
from agentkit.run_state import RunState
from agentkit.testing import build_test_tokenizer
from agentkit.trajectory.records import EnvStepRecord
from agentkit.trajectory.rows import build_rows
from agentkit.trajectory.store import JsonlStore, read_store
from tests.loop.run_support import (
    StartServer,
    mail_tools,
    make_model,
    without_call_ids,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "approvals" / "run.py"
PROMPT = "Weather in Paris, then mail it to a@x.org"
SCRIPT = [
    format_assistant(
        "Look it up and send it.",
        "Checking.",
        [("lookup", {"city": "Paris"}), ("send_email", {"to": "a@x.org", "body": "21C"})],
        thinking=True,
    ),
    format_assistant("Sent; check Oslo too.", "", [("lookup", {"city": "Oslo"})], thinking=True),
    format_assistant("Done.", "Paris is 21C; mail sent.", [], thinking=True),
]


def make_tools(outbox: Path | None, approval: bool) -> list[Tool]:
    """The mail tools; each mail sent is a line of ``outbox`` (the paused and the resumed
    process append to the same file)."""

    def post(mail: dict[str, str]) -> None:
        if outbox is not None:
            with outbox.open("a") as handle:
                handle.write(json.dumps(mail) + "\n")

    return mail_tools(post, approval=approval)


async def _pause(mode: str, url: str, tokenizer: str, work: Path) -> None:
    with JsonlStore(work / "store.jsonl") as store:
        tools = make_tools(work / "outbox.jsonl", approval=True)
        async with Agent(make_model(mode, url, tokenizer), tools=tools, recorder=store) as agent:
            result = await agent.run(PROMPT)
    if result.state is None:
        raise SystemExit(f"expected a pause, got {result.status}: {result.error}")
    (work / "state.json").write_text(result.state.model_dump_json())


async def _resume(mode: str, url: str, tokenizer: str, work: Path) -> None:
    state = RunState.model_validate_json((work / "state.json").read_text())
    decisions = [ApprovalDecision.approve(p.id) for p in state.pending]
    with JsonlStore(work / "store.jsonl") as store:
        tools = make_tools(work / "outbox.jsonl", approval=True)
        async with Agent(make_model(mode, url, tokenizer), tools=tools) as agent:
            result = await agent.resume(state, decisions, recorder=store)
    payload = {
        "status": result.status.value,
        "text": result.text,
        "messages": [m.model_dump(mode="json") for m in result.messages],
    }
    (work / "result.json").write_text(json.dumps(payload))


def _main(argv: list[str]) -> None:
    step, mode, url, tokenizer, work = argv
    run = _pause if step == "pause" else _resume
    anyio.run(run, mode, url, tokenizer, Path(work))


# --- the test ----------------------------------------------------------------------------------


async def _step(step: str, mode: str, url: str, tokenizer: Path, work: Path) -> None:
    # as a module from the checkout's root, so that it imports tests.loop.run_support
    command = [sys.executable, "-m", __spec__.name, step, mode, url, str(tokenizer), str(work)]
    done = await anyio.run_process(command, check=False, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["chat", "tokens"])
async def test_pause_restart_resume_matches_uninterrupted_run(
    mode: str, server_factory: StartServer, tmp_path: Path
) -> None:
    tokenizer = build_test_tokenizer()
    server = await server_factory(list(SCRIPT))
    await _step("pause", mode, server.base_url, tokenizer, tmp_path)
    state = RunState.model_validate_json((tmp_path / "state.json").read_text())
    assert [p.tool for p in state.pending] == ["send_email"]
    assert (state.token_context is not None) == (mode == "tokens")
    assert not (tmp_path / "outbox.jsonl").exists()  # nothing of the paused turn ran
    paused = read_store(tmp_path / "store.jsonl")
    assert len(paused.unfinished) == 1 and not paused.finished

    await _step("resume", mode, server.base_url, tokenizer, tmp_path)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "completed" and result["text"] == "Paris is 21C; mail sent."
    assert (tmp_path / "outbox.jsonl").read_text().count("a@x.org") == 1

    reference_server = await server_factory(list(SCRIPT))
    model = make_model(mode, reference_server.base_url, str(tokenizer))
    async with Agent(model, tools=make_tools(None, approval=False)) as agent:
        reference = await agent.run(PROMPT)
    assert reference.status is EpisodeStatus.COMPLETED
    expected = [m.model_dump(mode="json") for m in reference.messages]
    assert without_call_ids(result["messages"]) == without_call_ids(expected)
    assert sum(isinstance(m, ToolMessage) for m in reference.messages) == 3
    wire = [r.request for r in server.generation_requests()]
    reference_wire = [r.request for r in reference_server.generation_requests()]
    if mode == "tokens":
        assert [b["input_ids"] for b in wire] == [b["input_ids"] for b in reference_wire]
    else:
        assert [without_call_ids(b["messages"]) for b in wire] == [
            without_call_ids(b["messages"]) for b in reference_wire
        ]

    # one continuous episode in the store: one start, every call and step once, one end
    contents = read_store(tmp_path / "store.jsonl")
    (episode,) = contents.episodes
    assert episode.end is not None and episode.end.status is EpisodeStatus.COMPLETED
    assert [c.index for c in episode.calls] == [0, 1, 2]
    assert [s.index for s in episode.steps] == list(range(len(episode.steps)))
    approvals = [s.status for s in episode.steps if s.step_type == "approval"]
    assert approvals == ["awaiting_approval", "decided"]
    tools = [s for s in episode.steps if isinstance(s, EnvStepRecord) and s.step_type == "tool"]
    assert [s.call.name for s in tools if s.call] == ["lookup", "send_email", "lookup"]
    assert episode.end.usage.requests == 3 and episode.end.usage.tool_calls == 3
    if mode == "tokens":
        recorded = [c.input_ids for c in episode.calls]
        assert recorded == [b["input_ids"] for b in wire]
        # the training rows of the resumed episode are those of the uninterrupted one
        rows = build_rows(episode)
        expected_rows = build_rows(reference.trajectory)
        assert [(r.tokens, r.loss_mask, r.prompt_len) for r in rows] == [
            (r.tokens, r.loss_mask, r.prompt_len) for r in expected_rows
        ]


@pytest.mark.anyio
async def test_the_example_pauses_and_a_later_process_denies(tmp_path: Path) -> None:
    example = EXAMPLE
    first = await anyio.run_process([sys.executable, str(example), "pause"], cwd=tmp_path)
    assert "paused (awaiting_approval)" in first.stdout.decode()
    second = await anyio.run_process(
        [sys.executable, str(example), "resume", "--deny", "over the limit"], cwd=tmp_path
    )
    out = second.stdout.decode()
    assert "refund: denied" in out and "completed:" in out and "over the limit" in out
    (episode,) = read_store(tmp_path / "approvals.jsonl").episodes
    assert episode.end is not None and episode.end.usage.cost is not None


if __name__ == "__main__":
    _main(sys.argv[1:])
