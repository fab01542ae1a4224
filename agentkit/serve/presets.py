"""Launch presets for GLM-4.5 and GLM-4.5-Air on SGLang.

Tensor-parallel sizes are the minimum GPU counts of the GLM-4.5 model card (weights plus KV
cache for ordinary contexts, MTP on, batch size up to 8). The full 128K context needs twice as
many GPUs; ``full_context=True`` doubles the size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Precision = Literal["bf16", "fp8"]
Gpu = Literal["H100", "H200"]


@dataclass(frozen=True)
class ModelPreset:
    """One published checkpoint and what it needs to run."""

    name: str
    model_path: str
    precision: Precision
    tp_h100: int
    tp_h200: int
    extra_args: tuple[str, ...] = ()

    def tp_size(self, gpu: Gpu = "H100", *, full_context: bool = False) -> int:
        size = self.tp_h100 if gpu == "H100" else self.tp_h200
        return size * 2 if full_context else size


PRESETS: dict[str, ModelPreset] = {
    p.name: p
    for p in (
        ModelPreset("glm-4.5", "zai-org/GLM-4.5", "bf16", tp_h100=16, tp_h200=8),
        ModelPreset("glm-4.5-fp8", "zai-org/GLM-4.5-FP8", "fp8", tp_h100=8, tp_h200=4),
        ModelPreset("glm-4.5-air", "zai-org/GLM-4.5-Air", "bf16", tp_h100=4, tp_h200=2),
        ModelPreset(
            "glm-4.5-air-fp8",
            "zai-org/GLM-4.5-Air-FP8",
            "fp8",
            tp_h100=2,
            tp_h200=1,
            extra_args=("--disable-shared-experts-fusion",),
        ),
    )
}


def find_preset(model: str, precision: Precision | None = None) -> ModelPreset | None:
    """The preset for a name such as ``glm-4.5-air`` (optionally forced to ``fp8``), or for a
    published model path such as ``zai-org/GLM-4.5-Air-FP8``; ``None`` for any other model."""
    key = model.strip().lower()
    by_path = {p.model_path.lower(): p for p in PRESETS.values()}
    preset = PRESETS.get(key) or by_path.get(key)
    if preset is None:
        return None
    if precision is None or precision == preset.precision:
        return preset
    base = preset.name.removesuffix("-fp8")
    return PRESETS[base + "-fp8" if precision == "fp8" else base]
