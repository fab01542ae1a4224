"""Serving GLM-4.5 with SGLang: launch presets, the server command line, a managed server process
and speculative-decoding statistics."""

from .config import ServeConfig, SpeculativeConfig
from .presets import PRESETS, ModelPreset, find_preset
from .process import SGLangServer, SGLangServerError
from .speculative import accept_length

__all__ = [
    "PRESETS",
    "ModelPreset",
    "SGLangServer",
    "SGLangServerError",
    "ServeConfig",
    "SpeculativeConfig",
    "accept_length",
    "find_preset",
]
