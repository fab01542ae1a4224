"""Speculative-decoding statistics from SGLang's ``meta_info``.

SGLang renames its ``spec_*`` fields between versions (0.5.1 has only ``spec_verify_ct``; later
versions add accept rates and token counts under changing names). The accept length, the mean
number of tokens produced per verification step, is therefore computed from the two fields
every version has: ``completion_tokens / spec_verify_ct``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def accept_length(meta_info: Mapping[str, Any]) -> float | None:
    """Mean tokens per verify step for one request; ``None`` without speculative decoding."""
    verify = meta_info.get("spec_verify_ct")
    completion = meta_info.get("completion_tokens")
    if isinstance(verify, bool) or isinstance(completion, bool):
        return None
    if not isinstance(verify, int | float) or not isinstance(completion, int | float):
        return None
    if verify <= 0:
        return None
    return float(completion) / float(verify)
