"""Linear storage: a call's store line keeps only its appended ids, not the whole prefix.

A real token-mode episode against the SGLang test server is written to a store; calls after the
first carry no ``input_ids`` (only their length) and the reader rebuilds them token for token,
so training rows are identical to those built from the episode in memory. Stores written in
the old format (every call with its full ``input_ids``) read the same; a line whose elided
prefix cannot be rebuilt is reported, not guessed; store size grows linearly with turns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit import Agent, tool
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.testing import SGLangTestServer, build_test_tokenizer
from agentkit.testing.long_episode import synthetic_episode
from agentkit.trajectory.parquet import compact, read_parquet
from agentkit.trajectory.records import ModelCallRecord
from agentkit.trajectory.rows import build_rows
from agentkit.trajectory.store import JsonlStore, encode_record, read_jsonl, read_store

pytestmark = pytest.mark.anyio


@tool
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: The key.
    """
    return f"value of {key} " * 5


def _call(key: str) -> str:
    return (
        f"<think>look {key}</think>\n<tool_call>lookup\n<arg_key>key</arg_key>\n"
        f"<arg_value>{key}</arg_value>\n</tool_call>"
    )


async def _episode(path: Path, turns: int) -> list[ModelCallRecord]:
    script = [_call(f"k{i}") for i in range(turns - 1)] + ["<think>done</think>\nAll looked up."]
    async with SGLangTestServer(policy=script) as server:
        model = SGLangTokens(server.base_url, build_test_tokenizer())
        async with JsonlStore(path) as store, Agent(model=model, tools=[lookup]) as agent:
            result = await agent.run("look everything up", recorder=store)
    assert result.ok, result.error
    return list(result.trajectory.calls)


def _lines(path: Path, kind: str) -> list[dict]:  # type: ignore[type-arg]
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["kind"] == kind]


async def test_calls_after_the_first_store_only_appended_ids(tmp_path: Path) -> None:
    path = tmp_path / "store.jsonl"
    in_memory = await _episode(path, turns=4)
    lines = _lines(path, "model_call")
    assert len(lines) == 4
    assert lines[0]["input_ids"] is not None and lines[0]["input_elided"] is None
    for line, call in zip(lines[1:], in_memory[1:], strict=True):
        assert line["input_ids"] is None
        assert line["input_elided"] == len(call.input_ids or [])
    contents = read_store(path)
    assert contents.bad_lines == []
    traj = contents.episodes[0]
    assert [c.input_ids for c in traj.calls] == [c.input_ids for c in in_memory]
    assert all(c.input_elided is None for c in traj.calls)
    # rows from the store equal rows from the in-memory records, token for token
    memory_traj = traj.model_copy(update={"calls": in_memory})
    assert build_rows(traj) == build_rows(memory_traj)
    # compaction keeps the short form and reads back the same tokens
    parquet = read_parquet(compact(path))
    assert [c.input_ids for c in parquet.episodes[0].calls] == [c.input_ids for c in in_memory]


async def test_an_old_format_store_reads_the_same(tmp_path: Path) -> None:
    new = tmp_path / "new.jsonl"
    in_memory = await _episode(new, turns=3)
    # the old format: the same records, every call with its full input_ids
    contents = read_store(new)
    traj = contents.episodes[0]
    old = tmp_path / "old.jsonl"
    items = [traj.start, *traj.items(), traj.end]
    old.write_bytes(b"".join(encode_record(i) for i in items if i is not None))
    assert all(line["input_ids"] is not None for line in _lines(old, "model_call"))
    old_traj = read_store(old).episodes[0]
    assert [c.input_ids for c in old_traj.calls] == [c.input_ids for c in in_memory]
    assert build_rows(old_traj) == build_rows(traj)


def test_a_prefix_that_cannot_be_rebuilt_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "store.jsonl"
    with JsonlStore(path) as store:
        for record in synthetic_episode(3, prompt_tokens=20, output_tokens=5, tool_tokens=4):
            store.write(record)
    lines = path.read_text().splitlines()
    # drop the first call's line: the second call's prefix has nothing to extend
    first = next(i for i, line in enumerate(lines) if '"kind":"model_call"' in line)
    path.write_text("\n".join(lines[:first] + lines[first + 1 :]) + "\n")
    contents = read_jsonl(path)
    assert any("no earlier call" in b.error for b in contents.bad_lines)
    assert contents.episodes[0].calls[0].input_ids is None


def test_a_call_that_does_not_extend_the_previous_one_keeps_its_ids(tmp_path: Path) -> None:
    records = synthetic_episode(3, prompt_tokens=20, output_tokens=5, tool_tokens=4)
    calls = [r for r in records if isinstance(r, ModelCallRecord)]
    rewritten = calls[2].model_copy(update={"input_ids": [7, 8, 9] + (calls[2].input_ids or [])})
    records[records.index(calls[2])] = rewritten
    path = tmp_path / "store.jsonl"
    with JsonlStore(path) as store:
        for record in records:
            store.write(record)
    lines = _lines(path, "model_call")
    assert [line["input_ids"] is None for line in lines] == [False, True, False]
    got = read_jsonl(path).episodes[0].calls
    assert got[2].input_ids == rewritten.input_ids


def _store_bytes(tmp_path: Path, turns: int) -> int:
    path = tmp_path / f"{turns}.jsonl"
    with JsonlStore(path, fsync="never") as store:
        for record in synthetic_episode(turns):
            store.write(record)
    return path.stat().st_size


def test_store_size_grows_linearly_with_turns(tmp_path: Path) -> None:
    small, large = _store_bytes(tmp_path, 10), _store_bytes(tmp_path, 50)
    # 5x the turns: linear storage is about 5x the bytes, full prefixes were about 18x
    assert large / small < 6.0
    full = sum(len(encode_record(r)) for r in synthetic_episode(50))
    assert large * 5 < full
