"""Routed experts and sampling masks as SGLang's ``/generate`` returns them (simulated).

Routed experts (``return_routed_experts``; the server needs ``--enable-return-routed-experts``):
``meta_info.routed_experts`` is base64 of int32 values shaped ``[rows, layers, top_k]``, one
row per position of ``[routed_experts_start_len, len(prompt) + len(output) - 1)`` (the last
generated token is never fed back, so it has no routing); ``routed_experts_start_len`` is
echoed. The sampling mask (``return_sampling_mask``): ``meta_info.output_token_sampling_mask``
holds, per generated token, the token ids top-p/top-k kept (the sampled one among them), with
``output_token_sampling_logprobs`` and ``output_token_sampling_mask_length``.

The simulated values are deterministic functions of the token at each position, so a replay
that misaligns rows or tokens is caught by a test.
"""

from __future__ import annotations

import base64
from array import array
from typing import Any


def routed_expert_ids(token: int, layers: int, top_k: int, experts: int) -> list[int]:
    """The simulated experts of one position: ``layers x top_k`` ids, distinct per layer."""
    out: list[int] = []
    for layer in range(layers):
        base = (token * 31 + layer * 7) % experts
        out.extend((base + k) % experts for k in range(top_k))
    return out


def routed_experts_meta(
    tokens: list[int], start: int, layers: int, top_k: int, experts: int
) -> dict[str, Any]:
    """``routed_experts`` (base64 int32) and ``routed_experts_start_len`` for the positions
    ``[start, len(tokens) - 1)`` of the whole sequence ``tokens``."""
    values: list[int] = []
    for position in range(start, max(start, len(tokens) - 1)):
        values.extend(routed_expert_ids(tokens[position], layers, top_k, experts))
    data = array("i", values)
    return {
        "routed_experts": base64.b64encode(data.tobytes()).decode("ascii"),
        "routed_experts_start_len": start,
    }


def sampling_support(token: int, width: int, vocab: int) -> list[int]:
    """The simulated kept ids of one sampled token: the token and ``width - 1`` others."""
    kept = [token]
    step = 1
    while len(kept) < min(width, vocab):
        candidate = (token + step * 17) % vocab
        if candidate not in kept:
            kept.append(candidate)
        step += 1
    return kept


def sampling_mask_width(sampling: dict[str, Any]) -> int:
    """How many ids the simulated support keeps: ``top_k`` when set, else 4 (a top-p nucleus)."""
    top_k = sampling.get("top_k")
    if isinstance(top_k, int) and top_k > 0:
        return top_k
    return 4


def sampling_mask_meta(
    output_ids: list[int], logprobs: list[float], width: int, vocab: int
) -> dict[str, Any]:
    masks = [sampling_support(token, width, vocab) for token in output_ids]
    return {
        "output_token_sampling_mask": masks,
        "output_token_sampling_logprobs": list(logprobs),
        "output_token_sampling_mask_length": len(masks),
    }
