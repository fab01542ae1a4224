"""Routing and sampling-mask replay on SGLang's ``/generate`` (token mode).

Asked for with ``return_routed_experts`` + ``routed_experts_start_len`` (the server must run
with ``--enable-return-routed-experts``) and ``return_sampling_mask``. Each call asks for the
routing of the positions the previous call did not cover: ``[len(context) - 1, ...)`` where the
context is the previous call's prompt and output (its last generated token was never fed
back), so the calls of an episode tile the sequence with no overlap and the store keeps each
position's routing once. A reply that was asked for replay data and lacks it, or whose sizes
do not match the tokens, is a non-retryable protocol failure of the call: never a silently
missing replay.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, ConfigDict

from agentkit.models.failures import AttemptFailure
from agentkit.trajectory.packed import PackedInts, RaggedInts, RoutedExperts
from agentkit.trajectory.records import AttemptCause

ENGINE_META_EXCLUDED = (
    "output_token_logprobs",
    "input_token_logprobs",
    "routed_experts",
    "output_token_sampling_mask",
    "output_token_sampling_logprobs",
)


class ReplayRequest(BaseModel):
    """What one call asks for: routing from ``start`` (or none), the sampling mask or not."""

    model_config = ConfigDict(frozen=True)

    routed_experts: bool = False
    start: int = 0
    sampling_mask: bool = False
    layout: tuple[int, int] | None = None  # (layers, top_k) of the model, when known

    def fields(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.routed_experts:
            body["return_routed_experts"] = True
            body["routed_experts_start_len"] = self.start
        if self.sampling_mask:
            body["return_sampling_mask"] = True
        return body


def _fail(message: str) -> AttemptFailure:
    return AttemptFailure(AttemptCause.PROTOCOL, message, retryable=False)


def check_replay(data: dict[str, Any], want: ReplayRequest, input_len: int) -> None:
    """Raise a non-retryable failure when the reply lacks what ``want`` asked for."""
    meta: dict[str, Any] = data["meta_info"]
    outputs = len(data["output_ids"])
    if want.routed_experts:
        routed_experts(meta, want, input_len, outputs)
    if want.sampling_mask:
        sampling_mask(meta, outputs)


def routed_experts(
    meta: dict[str, Any], want: ReplayRequest, input_len: int, outputs: int
) -> RoutedExperts:
    """The reply's routing as packed rows, checked against the tokens it must cover."""
    raw = meta.get("routed_experts")
    if not isinstance(raw, str):
        raise _fail(
            "routed experts were asked for but meta_info has no routed_experts (is the server "
            "launched with --enable-return-routed-experts?)"
        )
    start = meta.get("routed_experts_start_len", want.start)
    if start != want.start:
        raise _fail(f"routed experts start at {start}, {want.start} was asked for")
    try:
        size = len(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise _fail(f"routed_experts is not base64: {exc}") from exc
    rows = max(0, input_len + outputs - 1 - want.start)
    if size % 4 or (rows and (size // 4) % rows) or (not rows and size):
        raise _fail(f"routed_experts has {size} bytes, not int32 rows for {rows} positions")
    width = size // 4 // rows if rows else 0
    shape = [rows, width]
    if want.layout is not None:
        layers, top_k = want.layout
        if rows and width != layers * top_k:
            raise _fail(f"routed_experts rows hold {width} ids, not {layers} layers x {top_k}")
        shape = [rows, layers, top_k]
    return RoutedExperts(start=want.start, experts=PackedInts.from_base64(raw, shape))


def sampling_mask(meta: dict[str, Any], outputs: int) -> RaggedInts:
    """The kept token ids of each generated token, checked for one row per output token."""
    rows = meta.get("output_token_sampling_mask")
    if not isinstance(rows, list):
        raise _fail(
            "the sampling mask was asked for but meta_info has no output_token_sampling_mask"
        )
    if len(rows) != outputs:
        raise _fail(f"{len(rows)} sampling-mask rows for {outputs} generated tokens")
    clean: list[list[int]] = []
    for row in rows:
        if not isinstance(row, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in row
        ):
            raise _fail("a sampling-mask row is not a list of token ids")
        clean.append(row)
    return RaggedInts.from_rows(clean)
