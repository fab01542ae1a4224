"""Training rows: an episode's token-mode calls merged by prefix into loss-masked sequences.

Walk the calls in order keeping the tokens held so far. When a call's ``input_ids`` start with
the held tokens, the new part is appended as context (mask 0, log-prob 0.0, its source taken
from the call's ``appended`` segments: tool, user, template) and the call's ``output_ids`` as
model tokens (mask 1, with their log-probs). When a prompt does not extend the held tokens (the
history was rewritten), the row is closed and a new one starts; nothing is ever re-tokenized.

:func:`check_row` checks the invariants of the research note and :func:`build_rows` refuses
rows that break them (:class:`RowInvariantError`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from agentkit.trajectory.records import EnvStepRecord, ModelCallRecord, TokenSource, Trajectory

MERGE_ALGORITHM = "prefix_merge/1"


class Span(BaseModel):
    """A run of row tokens with one source: ``tokens[start:start+length]``."""

    start: int
    length: int
    source: TokenSource
    call_index: int | None = None
    step_index: int | None = None


class TrainingRow(BaseModel):
    """One training sequence (one slime ``Sample``, one verl row).

    ``tokens[:prompt_len]`` is the prompt; ``loss_mask`` and ``rollout_logprobs`` cover the
    response region ``tokens[prompt_len:]``: mask 1 only on model-sampled tokens, log-prob 0.0
    wherever the mask is 0.
    """

    episode_id: str
    row_index: int = 0
    call_indices: list[int] = Field(default_factory=list)
    call_prompt_lens: list[int] = Field(default_factory=list)
    tokens: list[int]
    prompt_len: int
    loss_mask: list[int]
    rollout_logprobs: list[float] | None = None
    spans: list[Span] = Field(default_factory=list)
    weight_versions: list[str | None] = Field(default_factory=list)
    finish_reasons: list[str | None] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    merge_algorithm: str = MERGE_ALGORITHM

    @property
    def row_id(self) -> str:
        return f"{self.episode_id}/{self.row_index}"

    @property
    def response_length(self) -> int:
        return len(self.tokens) - self.prompt_len

    @property
    def prompt_ids(self) -> list[int]:
        return self.tokens[: self.prompt_len]

    @property
    def response_ids(self) -> list[int]:
        return self.tokens[self.prompt_len :]

    @property
    def off_policy(self) -> bool:
        """More than one weight version produced this row's model tokens."""
        return len({v for v in self.weight_versions if v is not None}) > 1

    def source_at(self, position: int) -> TokenSource | None:
        for span in self.spans:
            if span.start <= position < span.start + span.length:
                return span.source
        return None


class RowInvariantError(ValueError):
    """A training row breaks an invariant; ``problems`` lists every one found."""

    def __init__(self, row_id: str, problems: list[str]) -> None:
        super().__init__(f"row {row_id}: " + "; ".join(problems))
        self.row_id = row_id
        self.problems = problems


class NotTokenExact(ValueError):
    """The episode was recorded without token ids (chat mode) and cannot make training rows."""


def _source_per_position(row: TrainingRow) -> list[TokenSource | None]:
    sources: list[TokenSource | None] = [None] * len(row.tokens)
    for span in row.spans:
        for pos in range(max(span.start, 0), min(span.start + span.length, len(row.tokens))):
            sources[pos] = span.source
    return sources


def check_row(row: TrainingRow, calls: Sequence[ModelCallRecord] | None = None) -> list[str]:
    """Every invariant the row breaks (empty when it is sound).

    Without ``calls``: lengths, mask values, log-probs 0.0 where masked, spans tiling the tokens,
    mask 1 only on model tokens. With the merged ``calls`` (in order): each call's ``input_ids``
    is a prefix of the row and its ``output_ids``/log-probs sit right after it.
    """
    problems: list[str] = []
    n_response = len(row.tokens) - row.prompt_len
    if not 0 <= row.prompt_len <= len(row.tokens):
        problems.append(f"prompt_len {row.prompt_len} outside 0..{len(row.tokens)}")
    if len(row.loss_mask) != n_response:
        problems.append(
            f"loss_mask has {len(row.loss_mask)} entries for {n_response} response tokens"
        )
    if any(m not in (0, 1) for m in row.loss_mask):
        problems.append("loss_mask holds values other than 0 and 1")
    if row.rollout_logprobs is not None:
        if len(row.rollout_logprobs) != len(row.loss_mask):
            problems.append(
                f"{len(row.rollout_logprobs)} log-probs for {len(row.loss_mask)} mask entries"
            )
        bad = [
            i
            for i, (m, lp) in enumerate(zip(row.loss_mask, row.rollout_logprobs, strict=False))
            if m == 0 and lp != 0.0
        ]
        if bad:
            problems.append(f"non-zero log-prob on masked response position {bad[0]}")
    position = 0
    for span in row.spans:
        if span.start != position or span.length <= 0:
            problems.append(f"spans do not tile the tokens at position {position}")
            break
        position += span.length
    else:
        if position != len(row.tokens):
            problems.append(f"spans cover {position} of {len(row.tokens)} tokens")
    sources = _source_per_position(row)
    for i, m in enumerate(row.loss_mask):
        pos = row.prompt_len + i
        source = sources[pos] if pos < len(sources) else None
        if m == 1 and source is not TokenSource.MODEL:
            problems.append(
                f"loss mask on a {source.value if source else 'sourceless'} token at position {pos}"
            )
            break
    if calls is not None:
        problems.extend(_check_calls(row, calls))
    return problems


def _check_calls(row: TrainingRow, calls: Sequence[ModelCallRecord]) -> list[str]:
    problems: list[str] = []
    if [c.index for c in calls] != row.call_indices:
        problems.append(f"row merges calls {row.call_indices}, given {[c.index for c in calls]}")
        return problems
    for call in calls:
        prompt = call.input_ids or []
        out = call.output_ids or []
        end = len(prompt)
        if row.tokens[:end] != prompt:
            problems.append(f"call {call.index}: its prompt is not a prefix of the row")
            continue
        if row.tokens[end : end + len(out)] != out:
            problems.append(f"call {call.index}: its output does not follow its prompt")
            continue
        if end + len(out) > row.prompt_len:
            first = max(end, row.prompt_len)
            mask = row.loss_mask[first - row.prompt_len : end + len(out) - row.prompt_len]
            if any(m != 1 for m in mask):
                problems.append(f"call {call.index}: a sampled token is masked out")
            if row.rollout_logprobs is not None and call.output_logprobs is not None:
                got = row.rollout_logprobs[first - row.prompt_len : end + len(out) - row.prompt_len]
                if got != call.output_logprobs[first - end :]:
                    problems.append(f"call {call.index}: log-probs differ from the recorded ones")
    return problems


def validate_row(row: TrainingRow, calls: Sequence[ModelCallRecord] | None = None) -> TrainingRow:
    """Return the row, or raise :class:`RowInvariantError` listing what it breaks."""
    problems = check_row(row, calls)
    if problems:
        raise RowInvariantError(row.row_id, problems)
    return row


def _steps_before_calls(trajectory: Trajectory) -> dict[int, list[EnvStepRecord]]:
    """For each call, the environment steps recorded since the previous call (in order)."""
    pending: list[EnvStepRecord] = []
    out: dict[int, list[EnvStepRecord]] = {}
    for item in trajectory.items():
        if isinstance(item, ModelCallRecord):
            out[item.index] = pending
            pending = []
        else:
            pending.append(item)
    return out


class _RowBuilder:
    def __init__(
        self,
        episode_id: str,
        row_index: int,
        call: ModelCallRecord,
        steps: dict[int, list[EnvStepRecord]],
    ) -> None:
        self.steps = steps
        prompt = list(call.input_ids or [])
        self.row = TrainingRow(
            episode_id=episode_id,
            row_index=row_index,
            tokens=list(prompt),
            prompt_len=len(prompt),
            loss_mask=[],
            rollout_logprobs=[],
        )
        self.calls: list[ModelCallRecord] = []
        appended = [i for seg in call.appended for i in seg.ids]
        head = len(prompt) - len(appended)
        if appended and head >= 0 and prompt[head:] == appended:
            if head:
                self._span(0, head, TokenSource.PROMPT, call.index, None)
            self._segments(head, call)
        else:
            self._span(0, len(prompt), TokenSource.PROMPT, call.index, None)
            if prompt:
                self.row.flags.append(
                    f"call {call.index}: appended segments do not match its prompt"
                )

    def _span(
        self, start: int, length: int, source: TokenSource, call: int, step: int | None
    ) -> None:
        if length > 0:
            self.row.spans.append(
                Span(start=start, length=length, source=source, call_index=call, step_index=step)
            )

    def _segments(self, start: int, call: ModelCallRecord) -> None:
        # segments without a step index take the steps recorded since the previous call, in
        # order, by kind (tool results for tool segments, user turns for user segments)
        queues = {
            TokenSource.TOOL: [s for s in self.steps.get(call.index, []) if s.step_type == "tool"],
            TokenSource.USER: [s for s in self.steps.get(call.index, []) if s.step_type == "user"],
        }
        for seg in call.appended:
            step = seg.step_index
            queue = queues.get(seg.source)
            if queue:
                inferred = queue.pop(0).index
                step = inferred if step is None else step
            self._span(start, len(seg.ids), seg.source, call.index, step)
            start += len(seg.ids)

    def extends(self, call: ModelCallRecord) -> bool:
        prompt = call.input_ids or []
        held = self.row.tokens
        return len(prompt) >= len(held) and prompt[: len(held)] == held

    def add_context(self, call: ModelCallRecord) -> None:
        """Append the part of the call's prompt beyond the held tokens (not trained)."""
        prompt = call.input_ids or []
        start = len(self.row.tokens)
        delta = prompt[start:]
        if not delta:
            return
        appended = [i for seg in call.appended for i in seg.ids]
        if appended == delta:
            self._segments(start, call)
        else:
            self._span(start, len(delta), TokenSource.PROMPT, call.index, None)
            self.row.flags.append(f"call {call.index}: appended segments do not match its prompt")
        self.row.tokens.extend(delta)
        self.row.loss_mask.extend([0] * len(delta))
        if self.row.rollout_logprobs is not None:
            self.row.rollout_logprobs.extend([0.0] * len(delta))

    def add_output(self, call: ModelCallRecord) -> None:
        out = call.output_ids or []
        start = len(self.row.tokens)
        self._span(start, len(out), TokenSource.MODEL, call.index, None)
        self.row.tokens.extend(out)
        self.row.loss_mask.extend([1] * len(out))
        if call.output_logprobs is None:
            if out:
                self.row.rollout_logprobs = None
                if "no rollout log-probs" not in self.row.flags:
                    self.row.flags.append("no rollout log-probs")
        elif self.row.rollout_logprobs is not None:
            self.row.rollout_logprobs.extend(call.output_logprobs)
        self.calls.append(call)
        self.row.call_indices.append(call.index)
        self.row.call_prompt_lens.append(len(call.input_ids or []))
        self.row.weight_versions.append(call.weight_version)
        self.row.finish_reasons.append(call.finish_reason)

    def finish(self, check: bool) -> TrainingRow:
        row = self.row
        if row.off_policy:
            row.flags.append("off-policy: several weight versions")
        if row.spans and row.spans[-1].source is not TokenSource.MODEL:
            row.flags.append("does not end on a model token")
        if check:
            validate_row(row, self.calls)
        return row


def build_rows(trajectory: Trajectory, *, check: bool = True) -> list[TrainingRow]:
    """Derive the training rows of one episode by prefix merge of its model calls.

    Raises :class:`NotTokenExact` for chat-mode episodes and :class:`RowInvariantError` for
    records that cannot make a sound row (e.g. log-probs that do not match the output tokens).
    """
    calls = sorted(trajectory.calls, key=lambda c: c.index)
    steps = _steps_before_calls(trajectory)
    rows: list[TrainingRow] = []
    builder: _RowBuilder | None = None
    for call in calls:
        if call.input_ids is None or call.output_ids is None:
            raise NotTokenExact(
                f"episode {trajectory.episode_id}: call {call.index} has no token ids "
                f"(mode {call.mode!r}); training rows need token mode"
            )
        if call.output_logprobs is not None and len(call.output_logprobs) != len(call.output_ids):
            raise RowInvariantError(
                f"{trajectory.episode_id}/call{call.index}",
                [
                    f"call {call.index}: {len(call.output_logprobs)} log-probs for "
                    f"{len(call.output_ids)} output tokens"
                ],
            )
        if builder is None or not builder.extends(call):
            if builder is not None:
                rows.append(builder.finish(check))
            builder = _RowBuilder(trajectory.episode_id, len(rows), call, steps)
        else:
            builder.add_context(call)
        builder.add_output(call)
    if builder is not None:
        rows.append(builder.finish(check))
    return rows
