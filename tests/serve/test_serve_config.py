"""Launch presets, the command line they produce, and the accept-length statistic."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentkit.serve import PRESETS, ServeConfig, SpeculativeConfig, accept_length, find_preset


def _flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


@pytest.mark.parametrize(
    ("model", "precision", "gpu", "path", "tp"),
    [
        ("glm-4.5", None, "H100", "zai-org/GLM-4.5", 16),
        ("glm-4.5", "fp8", "H100", "zai-org/GLM-4.5-FP8", 8),
        ("glm-4.5", "fp8", "H200", "zai-org/GLM-4.5-FP8", 4),
        ("glm-4.5-air", None, "H100", "zai-org/GLM-4.5-Air", 4),
        ("glm-4.5-air", "fp8", "H100", "zai-org/GLM-4.5-Air-FP8", 2),
        ("GLM-4.5-Air-FP8", "bf16", "H100", "zai-org/GLM-4.5-Air", 4),
        ("zai-org/GLM-4.5-Air-FP8", None, "H200", "zai-org/GLM-4.5-Air-FP8", 1),
    ],
)
def test_presets_follow_the_model_card(
    model: str, precision: str | None, gpu: str, path: str, tp: int
) -> None:
    config = ServeConfig.for_model(model, precision=precision, gpu=gpu)  # type: ignore[arg-type]
    if (
        config.nodes > 1
    ):  # spans nodes: needs node 0's address (tests/serve/test_serve_multinode.py)
        config = config.model_copy(update={"dist_init_addr": "node0:5000"})
    cmd = config.command()
    assert cmd[1:3] == ["-m", "sglang.launch_server"]
    assert _flag(cmd, "--model-path") == path
    assert _flag(cmd, "--tp-size") == str(tp)
    assert _flag(cmd, "--tool-call-parser") == "glm45"
    assert _flag(cmd, "--reasoning-parser") == "glm45"
    assert ("--disable-shared-experts-fusion" in cmd) == (path == "zai-org/GLM-4.5-Air-FP8")


def test_full_context_doubles_the_gpus() -> None:
    assert ServeConfig.for_model("glm-4.5-fp8", full_context=True).tp_size == 16


def test_default_speculative_flags_are_the_model_cards() -> None:
    cmd = ServeConfig.for_model("glm-4.5-air").command()
    assert _flag(cmd, "--speculative-algorithm") == "EAGLE"
    assert _flag(cmd, "--speculative-num-steps") == "3"
    assert _flag(cmd, "--speculative-eagle-topk") == "1"
    assert _flag(cmd, "--speculative-num-draft-tokens") == "4"


def test_overrides_and_unknown_models() -> None:
    config = ServeConfig.for_model(
        "/models/my-glm",
        tp_size=2,
        speculative=SpeculativeConfig(num_steps=1),
        context_length=65536,
        mem_fraction_static=0.85,
        host="0.0.0.0",
        port=8001,
        extra_args=["--enable-metrics"],
    )
    cmd = config.command()
    assert _flag(cmd, "--model-path") == "/models/my-glm"
    assert "--served-model-name" not in cmd
    assert _flag(cmd, "--speculative-num-draft-tokens") == "2"
    assert _flag(cmd, "--context-length") == "65536"
    assert _flag(cmd, "--mem-fraction-static") == "0.85"
    assert cmd[-1] == "--enable-metrics"
    assert config.base_url == "http://127.0.0.1:8001"
    no_spec = ServeConfig.for_model("glm-4.5-air", speculative=None, model_path="/w/air").command()
    assert not any(arg.startswith("--speculative") for arg in no_spec)
    assert _flag(no_spec, "--model-path") == "/w/air"


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValidationError, match="num_steps \\+ 1"):
        SpeculativeConfig(num_steps=3, eagle_topk=1, num_draft_tokens=8)
    assert SpeculativeConfig(num_steps=3, eagle_topk=4, num_draft_tokens=8).draft_tokens == 8
    with pytest.raises(ValidationError):
        ServeConfig.for_model("glm-4.5-air", port=70000)
    with pytest.raises(ValidationError):
        ServeConfig.for_model("glm-4.5-air", mem_fraction_static=1.5)


def test_find_preset() -> None:
    assert find_preset("something/else") is None
    assert set(PRESETS) == {"glm-4.5", "glm-4.5-fp8", "glm-4.5-air", "glm-4.5-air-fp8"}


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"completion_tokens": 90, "spec_verify_ct": 40}, 2.25),
        ({"completion_tokens": 90, "spec_verify_ct": 40, "spec_accept_length": 9.0}, 2.25),
        ({"completion_tokens": 10}, None),
        ({"completion_tokens": 10, "spec_verify_ct": 0}, None),
        ({"completion_tokens": "10", "spec_verify_ct": 5}, None),
        ({"completion_tokens": True, "spec_verify_ct": 5}, None),
    ],
)
def test_accept_length(meta: dict[str, object], expected: float | None) -> None:
    assert accept_length(meta) == expected
