"""Routing and sampling-mask replay, from the SGLang test server to slime's export.

Token mode asks ``/generate`` for the routed experts of the positions the previous call did not
cover (``routed_experts_start_len``) and for the sampling mask; the store keeps them packed per
call; the slime export lays them end to end into ``rollout_routed_experts`` (``len(tokens) - 1``
rows of ``layers x top_k``, slime's routing-replay shape) and the top-p replay form in its
metadata. The test server's values are a deterministic function of the token at each position,
so a row or token misalignment anywhere on the way fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentkit import Agent, EpisodeStatus, tool
from agentkit.models.base import ModelSettings
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.serve.config import ServeConfig
from agentkit.testing import SGLangTestServer, build_test_tokenizer
from agentkit.testing.replay_meta import routed_expert_ids
from agentkit.trajectory.exports import slime_samples, trainable_episodes
from agentkit.trajectory.packed import PackedInts
from agentkit.trajectory.records import Trajectory
from agentkit.trajectory.rows import build_rows
from agentkit.trajectory.store import JsonlStore, read_store

pytestmark = pytest.mark.anyio

LAYERS, TOP_K, EXPERTS = 3, 2, 16


@tool
def lookup(key: str) -> str:
    """Look a key up.

    Args:
        key: The key.
    """
    return f"value of {key}"


def _call(key: str) -> str:
    return (
        f"<think>look {key}</think>\n<tool_call>lookup\n<arg_key>key</arg_key>\n"
        f"<arg_value>{key}</arg_value>\n</tool_call>"
    )


SCRIPT = [_call("a"), _call("b"), "<think>done</think>\nBoth looked up."]


def _scored(path: Path) -> Trajectory:
    """The store's episode with a reward (``agent.run`` gives none; exports need one)."""
    traj = read_store(path).episodes[0]
    assert traj.end is not None
    traj.end = traj.end.model_copy(update={"reward": 1.0})
    return traj


async def _run(
    path: Path, *, stream: bool = False, enabled: bool = True, **model_options: Any
) -> tuple[Any, list[Any]]:
    async with SGLangTestServer(
        policy=SCRIPT,
        enable_return_routed_experts=enabled,
        moe_layers=LAYERS,
        moe_top_k=TOP_K,
        moe_experts=EXPERTS,
    ) as server:
        model = SGLangTokens(
            server.base_url,
            build_test_tokenizer(),
            settings=ModelSettings(top_k=5, top_p=0.9),
            **model_options,
        )

        async def ignore(event: Any) -> None:
            return None

        async with JsonlStore(path) as store, Agent(model=model, tools=[lookup]) as agent:
            result = await agent.run(
                "look up a and b", recorder=store, event_handler=ignore if stream else None
            )
        requests = [r.request for r in server.generation_requests()]
    return result, requests


@pytest.mark.parametrize("stream", [False, True])
async def test_routing_round_trips_to_slimes_rollout_routed_experts(
    tmp_path: Path, stream: bool
) -> None:
    path = tmp_path / "store.jsonl"
    result, requests = await _run(
        path, stream=stream, routed_experts=True, moe_layout=(LAYERS, TOP_K), sampling_mask=True
    )
    assert result.ok, result.error
    calls = result.trajectory.calls
    assert len(calls) == 3 and len(requests) == 3
    # each call asks from the last position the previous call did not route
    starts = [r["routed_experts_start_len"] for r in requests]
    expected = [0] + [len(c.input_ids or []) + len(c.output_ids or []) - 1 for c in calls[:-1]]
    assert starts == expected
    assert all(r["return_routed_experts"] and r["return_sampling_mask"] for r in requests)
    traj = _scored(path)
    for call in traj.calls:
        assert call.routed_experts is not None and call.sampling_mask is not None
        assert call.routed_experts.experts.shape[1:] == [LAYERS, TOP_K]
        assert "routed_experts" not in call.engine_meta
    (sample,) = slime_samples(trainable_episodes([traj]))
    tokens = sample["tokens"]
    routed = sample["rollout_routed_experts"]
    assert len(routed) == len(tokens) - 1  # slime: rows = len(tokens) - 1
    for position, layers in enumerate(routed):
        flat = [e for layer in layers for e in layer]
        assert flat == routed_expert_ids(tokens[position], LAYERS, TOP_K, EXPERTS), position
    assert sample["metadata"]["replay_gaps"] == []


async def test_the_sampling_mask_covers_model_tokens_only(tmp_path: Path) -> None:
    path = tmp_path / "store.jsonl"
    result, _ = await _run(path, sampling_mask=True)
    assert result.ok, result.error
    traj = _scored(path)
    (row,) = build_rows(traj)
    (sample,) = slime_samples(trainable_episodes([traj]))
    mask = sample["metadata"]["sampling_mask"]
    ids, offsets = mask["token_ids"], mask["offsets"]
    assert len(offsets) == sample["response_length"] + 1 and offsets[0] == 0
    assert offsets[-1] == len(ids)
    for i, trained in enumerate(sample["loss_mask"]):
        kept = ids[offsets[i] : offsets[i + 1]]
        token = row.tokens[row.prompt_len + i]
        if trained:
            # top_k=5: the test server keeps five ids, the sampled one first
            assert len(kept) == 5 and kept[0] == token
        else:
            assert kept == []
    assert sample["rollout_routed_experts"] is None  # not asked for


async def test_a_server_without_the_routing_feature_fails_the_call_once(tmp_path: Path) -> None:
    path = tmp_path / "store.jsonl"
    result, requests = await _run(path, enabled=False, routed_experts=True)
    assert result.status is EpisodeStatus.MODEL_ERROR
    assert "--enable-return-routed-experts" in (result.error or "")
    assert len(requests) == 1, "a missing feature is not retried"
    (call,) = read_store(path).episodes[0].calls
    assert call.failed and len(call.attempts) == 1


def test_packed_arrays_refuse_a_wrong_size() -> None:
    good = PackedInts.from_values(list(range(6)), [3, 2])
    assert good.nested() == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="do not fill"):
        PackedInts.from_base64(good.data, [4, 2])


def test_agentkit_serve_enables_the_routing_capture() -> None:
    on = ServeConfig(model_path="m", routed_experts=True).command()
    off = ServeConfig(model_path="m").command()
    assert "--enable-return-routed-experts" in on
    assert "--enable-return-routed-experts" not in off


SLIME_MIRROR = Path("/work/.mirror/THUDM+slime/repo")


def _slime(tmp_path: Path) -> Any:
    """slime's own ``Sample`` and R3 check, from ``SLIME_SRC`` or the fetched mirror (not
    copied into the project), or skip."""
    pytest.importorskip("torch", reason="slime's Sample needs torch (CPU build)")
    pytest.importorskip("pybase64", reason="slime decodes routed experts with pybase64")
    import os
    import subprocess
    import sys

    root = Path(os.environ["SLIME_SRC"]) if os.environ.get("SLIME_SRC") else None
    if root is None:
        if not SLIME_MIRROR.exists():
            pytest.skip("slime's source is absent: set SLIME_SRC to a checkout of THUDM/slime")
        root = tmp_path / "slime_src"
        root.mkdir()
        archive = subprocess.run(
            ["git", f"--git-dir={SLIME_MIRROR}", "archive", "HEAD", "slime"],
            check=True,
            capture_output=True,
        )
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
    sys.path.insert(0, str(root))
    try:
        import slime.observability.rollout_data_utils as checks
        import slime.utils.types as types
    except ImportError as exc:
        pytest.skip(f"slime's modules do not import here: {exc}")
    finally:
        sys.path.remove(str(root))
    return types, checks


async def test_slimes_own_sample_accumulates_the_same_routing(tmp_path: Path) -> None:
    types, checks = _slime(tmp_path)
    import torch

    path = tmp_path / "store.jsonl"
    result, _ = await _run(path, routed_experts=True, moe_layout=(LAYERS, TOP_K))
    assert result.ok, result.error
    traj = _scored(path)
    (sample,) = slime_samples(trainable_episodes([traj]))
    # slime's Sample reads each recorded /generate reply the way its own rollout does
    args = type("Args", (), {"num_layers": LAYERS, "moe_router_topk": TOP_K})()
    theirs = types.Sample()
    for call in traj.calls:
        assert call.routed_experts is not None
        theirs.tokens = (call.input_ids or []) + (call.output_ids or [])
        meta = {
            "routed_experts": call.routed_experts.experts.data,
            "routed_experts_start_len": call.routed_experts.start,
        }
        theirs._apply_meta_info(args, meta, update_terminal_info=False)
    assert theirs.rollout_routed_experts.tolist() == sample["rollout_routed_experts"]
    # and slime's R3 check takes the export
    checks.validate_rollout_routed_experts_for_replay(
        [torch.as_tensor(sample["rollout_routed_experts"])], args
    )
