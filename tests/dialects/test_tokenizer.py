"""The tokenizer layer and the offline GLM-4.5 test tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentkit.dialects.glm45 import SPECIAL_TOKENS, STOP_TOKEN_IDS, STOP_TOKENS
from agentkit.testing import (
    GLM45_SPECIAL_TOKENS,
    GLM45_VOCAB_SIZE,
    build_test_tokenizer,
    load_test_tokenizer,
)
from agentkit.tokenizer import HFTokenizersTokenizer, Tokenizer, load_tokenizer

TEXTS = [
    "",
    "Weather in Paris?",
    "  leading and trailing spaces  \n\n\ttabs\r\n",
    "北京明天的天气怎么样？",
    "emoji 🤖👩‍👩‍👧 and accents é ñ ü",
    "[gMASK]<sop><|system|>\nYou are helpful.<|user|>\nhi/nothink<|assistant|>\n<think></think>",
    "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n</tool_call>",
    "half a tag <|use and </thin k> stay text",
    "\x00\x01 control bytes \x7f",
]


@pytest.fixture(scope="module")
def tokenizer() -> HFTokenizersTokenizer:
    return load_test_tokenizer()


def test_vocabulary_has_glm45_size_and_special_ids(tokenizer: HFTokenizersTokenizer) -> None:
    assert tokenizer.vocab_size == GLM45_VOCAB_SIZE == 151552
    assert isinstance(tokenizer, Tokenizer)
    for token, token_id in GLM45_SPECIAL_TOKENS.items():
        assert tokenizer.token_to_id(token) == token_id, token
        assert tokenizer.encode(token) == [token_id], token
        assert tokenizer.decode([token_id]) == token
    # The dialect's table and the tokenizer's agree.
    assert dict(SPECIAL_TOKENS) == GLM45_SPECIAL_TOKENS
    assert [tokenizer.token_to_id(t) for t in STOP_TOKENS] == list(STOP_TOKEN_IDS)


def test_research_table_ids(tokenizer: HFTokenizersTokenizer) -> None:
    expected = {
        "<|endoftext|>": 151329,
        "[gMASK]": 151331,
        "<sop>": 151333,
        "<|system|>": 151335,
        "<|user|>": 151336,
        "<|assistant|>": 151337,
        "<|observation|>": 151338,
        "<think>": 151350,
        "</think>": 151351,
        "<tool_call>": 151352,
        "</arg_value>": 151359,
        "/nothink": 151360,
    }
    assert {token: tokenizer.token_to_id(token) for token in expected} == expected
    assert tokenizer.token_to_id("<not a token>") is None


def test_encode_adds_no_special_tokens(tokenizer: HFTokenizersTokenizer) -> None:
    assert tokenizer.encode("") == []
    ids = tokenizer.encode("hi")
    assert ids
    assert all(i < 151329 for i in ids)


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip(tokenizer: HFTokenizersTokenizer, text: str) -> None:
    assert tokenizer.decode(tokenizer.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_round_trip_any_text(text: str) -> None:
    tokenizer = load_test_tokenizer()
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_role_tokens_are_recognised_inside_text(tokenizer: HFTokenizersTokenizer) -> None:
    ids = tokenizer.encode("hi/nothink<|assistant|>\n<think></think>")
    assert ids[-5:] == [151360, 151337, tokenizer.encode("\n")[0], 151350, 151351]


def test_skip_special_tokens_drops_control_tokens_but_keeps_tags(
    tokenizer: HFTokenizersTokenizer,
) -> None:
    ids = tokenizer.encode("<think>r</think>\nok<|user|>")
    assert tokenizer.decode(ids) == "<think>r</think>\nok<|user|>"
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>r</think>\nok"
    assert 151336 in tokenizer.special_ids
    assert 151350 not in tokenizer.special_ids


def test_ordinary_text_compresses(tokenizer: HFTokenizersTokenizer) -> None:
    text = "The weather in Paris is sunny today. Please call the function."
    assert len(tokenizer.encode(text)) < len(text) / 2


def test_build_is_deterministic_and_cached(tmp_path: Path) -> None:
    first = build_test_tokenizer(tmp_path / "a")
    second = build_test_tokenizer(tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    stamp = first.stat().st_mtime_ns
    assert build_test_tokenizer(tmp_path / "a") == first
    assert first.stat().st_mtime_ns == stamp
    assert first.name == "tokenizer.json"


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTKIT_CACHE_DIR", str(tmp_path))
    path = build_test_tokenizer()
    assert path.is_relative_to(tmp_path)


def test_load_tokenizer_from_file_and_folder(tmp_path: Path) -> None:
    path = build_test_tokenizer(tmp_path)
    for source in (path, path.parent, str(path)):
        loaded = load_tokenizer(source)
        assert loaded.encode("<|user|>") == [151336]
        assert loaded.vocab_size == GLM45_VOCAB_SIZE


def test_load_tokenizer_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path / "nowhere")
    try:
        import transformers  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        with pytest.raises(FileNotFoundError, match=r"no tokenizer\.json"):
            load_tokenizer(tmp_path)
