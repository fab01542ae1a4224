"""Training rows: prefix merge, masks, aligned log-probs, provenance, invariant checks."""

from __future__ import annotations

import pytest

from agentkit.trajectory.records import TokenSegment, TokenSource
from agentkit.trajectory.rows import (
    NotTokenExact,
    RowInvariantError,
    Span,
    TrainingRow,
    build_rows,
    check_row,
    validate_row,
)
from tests.trajectory_fakes import token_episode


def test_prefix_merge_makes_one_row_matching_every_call() -> None:
    traj = token_episode(turns=4, seed=11)
    (row,) = build_rows(traj)
    first, last = traj.calls[0], traj.calls[-1]
    assert first.input_ids is not None
    assert last.input_ids is not None
    assert last.output_ids is not None
    assert row.prompt_len == len(first.input_ids)
    assert row.tokens == last.input_ids + last.output_ids
    assert row.call_indices == [0, 1, 2, 3]
    for call in traj.calls:
        assert call.input_ids is not None
        assert call.output_ids is not None
        assert call.output_logprobs is not None
        start = len(call.input_ids) - row.prompt_len
        end = start + len(call.output_ids)
        assert row.loss_mask[start:end] == [1] * len(call.output_ids)
        assert row.rollout_logprobs is not None
        assert row.rollout_logprobs[start:end] == call.output_logprobs
    assert sum(row.loss_mask) == sum(len(c.output_ids or []) for c in traj.calls)
    assert check_row(row, traj.calls) == []
    assert row.flags == []


def test_provenance_spans_follow_the_appended_segments() -> None:
    traj = token_episode(turns=2, seed=12)
    (row,) = build_rows(traj)
    sources = [s.source for s in row.spans]
    assert sources == [
        TokenSource.PROMPT,
        TokenSource.TEMPLATE,
        TokenSource.MODEL,
        TokenSource.TOOL,
        TokenSource.TEMPLATE,
        TokenSource.MODEL,
    ]
    tool = row.spans[3]
    assert tool.step_index == 0
    assert row.tokens[tool.start : tool.start + tool.length] == traj.steps[0].appended_ids
    for i, mask in enumerate(row.loss_mask):
        assert (mask == 1) == (row.source_at(row.prompt_len + i) is TokenSource.MODEL)
        if mask == 0:
            assert row.rollout_logprobs is not None
            assert row.rollout_logprobs[i] == 0.0


def test_prompt_that_does_not_extend_starts_a_new_row() -> None:
    traj = token_episode(turns=3, seed=13)
    call = traj.calls[2]
    assert call.input_ids is not None
    rewritten = [7, 7, 7, *call.input_ids[5:]]  # history rewritten (e.g. compaction)
    traj.calls[2] = call.model_copy(
        update={
            "input_ids": rewritten,
            "appended": [TokenSegment(source=TokenSource.PROMPT, ids=rewritten)],
        }
    )
    rows = build_rows(traj)
    assert [r.call_indices for r in rows] == [[0, 1], [2]]
    assert rows[1].prompt_len == len(rewritten)
    assert rows[1].tokens[: len(rewritten)] == rewritten
    assert [r.row_index for r in rows] == [0, 1]


def test_mismatched_appended_segments_are_flagged_not_guessed() -> None:
    traj = token_episode(turns=2, seed=14)
    traj.calls[1] = traj.calls[1].model_copy(update={"appended": []})
    (row,) = build_rows(traj)
    assert any("appended segments do not match" in f for f in row.flags)
    assert check_row(row, traj.calls) == []


def test_chat_mode_episode_cannot_make_rows() -> None:
    traj = token_episode(turns=1)
    traj.calls[0] = traj.calls[0].model_copy(update={"input_ids": None, "mode": "chat"})
    with pytest.raises(NotTokenExact):
        build_rows(traj)


def test_logprob_length_mismatch_in_a_call_is_refused() -> None:
    traj = token_episode(turns=2, seed=15)
    lps = traj.calls[1].output_logprobs
    assert lps is not None
    traj.calls[1] = traj.calls[1].model_copy(update={"output_logprobs": lps[:-1]})
    with pytest.raises(RowInvariantError, match="log-probs for"):
        build_rows(traj)


def test_missing_logprobs_make_a_flagged_row_without_logprobs() -> None:
    traj = token_episode(turns=2, seed=16)
    traj.calls[1] = traj.calls[1].model_copy(update={"output_logprobs": None})
    (row,) = build_rows(traj)
    assert row.rollout_logprobs is None
    assert "no rollout log-probs" in row.flags


def test_several_weight_versions_flag_off_policy() -> None:
    traj = token_episode(turns=2, seed=17)
    traj.calls[1] = traj.calls[1].model_copy(update={"weight_version": "2"})
    (row,) = build_rows(traj)
    assert row.off_policy
    assert row.weight_versions == ["1", "2"]


# --- hand-made broken rows ------------------------------------------------------------------


def _good_row() -> TrainingRow:
    return TrainingRow(
        episode_id="ep",
        tokens=[1, 2, 3, 10, 11, 20, 21, 12],
        prompt_len=3,
        loss_mask=[1, 1, 0, 0, 1],
        rollout_logprobs=[-0.5, -0.25, 0.0, 0.0, -1.0],
        spans=[
            Span(start=0, length=3, source=TokenSource.PROMPT),
            Span(start=3, length=2, source=TokenSource.MODEL),
            Span(start=5, length=2, source=TokenSource.TOOL),
            Span(start=7, length=1, source=TokenSource.MODEL),
        ],
    )


def test_hand_made_good_row_passes() -> None:
    assert check_row(_good_row()) == []
    validate_row(_good_row())


def test_mask_on_a_tool_token_is_rejected() -> None:
    row = _good_row()
    row.loss_mask[2] = 1
    row.rollout_logprobs = [-0.5, -0.25, -0.1, 0.0, -1.0]
    with pytest.raises(RowInvariantError, match="loss mask on a tool token at position 5"):
        validate_row(row)


def test_logprob_length_mismatch_is_rejected() -> None:
    row = _good_row()
    row.rollout_logprobs = [-0.5, -0.25, 0.0, 0.0]
    with pytest.raises(RowInvariantError, match="4 log-probs for 5 mask entries"):
        validate_row(row)


def test_nonzero_logprob_on_masked_token_is_rejected() -> None:
    row = _good_row()
    row.rollout_logprobs = [-0.5, -0.25, -3.0, 0.0, -1.0]
    assert any("non-zero log-prob" in p for p in check_row(row))


def test_mask_length_and_span_gaps_are_rejected() -> None:
    row = _good_row()
    row.loss_mask = row.loss_mask[:-1]
    row.spans = row.spans[:-1]
    problems = check_row(row)
    assert any("loss_mask has 4 entries for 5" in p for p in problems)
    assert any("spans cover 7 of 8" in p for p in problems)


def test_prompt_not_a_prefix_is_rejected() -> None:
    traj = token_episode(turns=2, seed=18)
    (row,) = build_rows(traj)
    broken = row.model_copy(deep=True)
    broken.tokens[1] += 1  # the row no longer starts with the calls' prompts
    problems = check_row(broken, traj.calls)
    assert "call 0: its prompt is not a prefix of the row" in problems
    assert "call 1: its prompt is not a prefix of the row" in problems
    with pytest.raises(RowInvariantError):
        validate_row(broken, traj.calls)


def test_logprobs_that_differ_from_the_record_are_rejected() -> None:
    traj = token_episode(turns=2, seed=19)
    (row,) = build_rows(traj)
    assert row.rollout_logprobs is not None
    broken = row.model_copy(deep=True)
    assert broken.rollout_logprobs is not None
    broken.rollout_logprobs[-1] -= 1.0
    assert any("log-probs differ" in p for p in check_row(broken, traj.calls))


# --- property: any sequence of extending / forking calls --------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from agentkit.trajectory.records import ModelCallRecord, Trajectory  # noqa: E402
from tests.trajectory_fakes import token_episode as _episode  # noqa: E402

_ids = st.lists(st.integers(1, 1000), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), _ids, _ids, _ids), min_size=1, max_size=6))
def test_prefix_merge_property(plan: list[tuple[bool, list[int], list[int], list[int]]]) -> None:
    base = _episode(turns=1)
    traj = Trajectory(start=base.start)
    held: list[int] = []
    breaks = 0
    for index, (fork, context, fresh, out) in enumerate(plan):
        if fork and held:
            prompt = [held[0] + 1, *fresh]  # differs from the held tokens at position 0
            appended = [TokenSegment(source=TokenSource.PROMPT, ids=prompt)]
            breaks += 1
        else:
            prompt = held + context
            appended = [TokenSegment(source=TokenSource.TOOL, ids=context)]
        traj.calls.append(
            ModelCallRecord(
                episode_id=base.episode_id, index=index, turn=index, mode="tokens",
                input_ids=prompt, output_ids=out, output_logprobs=[-0.5] * len(out),
                appended=appended,
            )
        )  # fmt: skip
        held = prompt + out
    rows = build_rows(traj)
    assert len(rows) == breaks + 1
    assert [i for r in rows for i in r.call_indices] == list(range(len(plan)))
    by_index = {c.index: c for c in traj.calls}
    for row in rows:
        assert check_row(row, [by_index[i] for i in row.call_indices]) == []
        outputs = [by_index[i].output_ids or [] for i in row.call_indices]
        assert sum(row.loss_mask) == sum(len(o) for o in outputs)
        assert row.flags == []
