"""An offline stand-in for GLM-4.5's tokenizer, built deterministically with ``tokenizers``.

The real tokenizer cannot be downloaded here, so tests use a small byte-level BPE whose
vocabulary has GLM-4.5's size (151552) and GLM-4.5's special tokens at their real ids. Ordinary
text gets different ids than with the real model, but every text round-trips exactly (byte
level) and the ids that matter to the protocol (stop tokens, role tokens, ``<think>``, the tool
tags) are the real ones. Built once into a cache folder; later calls reuse the file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from pathlib import Path

import tokenizers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from agentkit.dialects.glm45 import SPECIAL_TOKENS
from agentkit.tokenizer import HFTokenizersTokenizer

__all__ = [
    "GLM45_SPECIAL_TOKENS",
    "GLM45_VOCAB_SIZE",
    "build_test_tokenizer",
    "load_test_tokenizer",
]

GLM45_VOCAB_SIZE = 151552
RECIPE_VERSION = 1

# GLM-4.5's added tokens and their ids come from the dialect (the research table, section 1.4).
# ``special`` marks the control tokens ``skip_special_tokens`` removes; the reasoning and tool
# tags stay in decoded text so that SGLang's reasoning and tool parsers can see them.
GLM45_SPECIAL_TOKENS: dict[str, int] = dict(SPECIAL_TOKENS)
_NON_SPECIAL = frozenset(
    {
        "<think>",
        "</think>",
        "<tool_call>",
        "</tool_call>",
        "<tool_response>",
        "</tool_response>",
        "<arg_key>",
        "</arg_key>",
        "<arg_value>",
        "</arg_value>",
        "/nothink",
    }
)

# Training text: varied English, code, JSON and the GLM-4.5 tool prompt, so that ordinary text
# gets a plausible number of tokens (a few characters per token).
_CORPUS = """\
You are a helpful assistant. Answer the user's question concisely and call tools when needed.
You may call one or more functions to assist with the user query.
You are provided with function signatures within <tools></tools> XML tags.
For each function call, output the function name and arguments within the following XML format.
The weather in Paris is sunny today, with a high of twenty-five degrees and a light breeze.
What is the weather in Beijing for the next two days? Let me check the forecast for you.
I will look up the order status and then update the shipping address for the customer.
The reservation was cancelled and the refund will be issued to the original payment method.
Please confirm that you want to proceed with the exchange of the following items.
The user wants to book a flight from New York to San Francisco on the fifteenth of May.
Search the documentation for the function that reads a file and returns its contents.
def get_weather(city: str, days: int = 1) -> dict:
    \"\"\"Return the forecast for a city.\"\"\"
    return {"city": city, "days": days, "forecast": ["sunny", "cloudy"]}
import json
from pathlib import Path
for line in Path("data.txt").read_text().splitlines():
    if line.strip():
        print(json.loads(line)["name"])
{"type": "function", "function": {"name": "get_weather", "description": "Get the weather",
"parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
{"order_id": "#W1234567", "status": "delivered", "items": [{"item_id": "1008292230", "price": 45.5}]}
The function returned an error: the file was not found. I should try another path instead.
Thinking step by step: first find the user, then check the order, then answer the question.
Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 2024 2025 3.14 42 and dates like 2024-05-15 appear.
Bonjour, je voudrais réserver une table pour deux personnes ce soir à vingt heures.
Der Benutzer möchte wissen, wie das Wetter morgen in Berlin sein wird.
北京明天的天气怎么样？请帮我查询一下。今天天气很好，适合出去散步。
"""


def _cache_root() -> Path:
    configured = os.environ.get("AGENTKIT_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "agentkit"


def _recipe_digest() -> str:
    """Short hash of everything the file depends on, so a changed recipe never reuses a stale
    cache entry."""
    recipe = json.dumps(
        [RECIPE_VERSION, tokenizers.__version__, sorted(GLM45_SPECIAL_TOKENS.items()), _CORPUS]
    )
    return hashlib.sha256(recipe.encode()).hexdigest()[:10]


def _build_json() -> str:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=4096,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS.splitlines(keepends=True), trainer)
    data = json.loads(tokenizer.to_str())
    vocab: dict[str, int] = data["model"]["vocab"]
    taken = set(vocab.values())
    for token, token_id in GLM45_SPECIAL_TOKENS.items():
        vocab[token] = token_id
        taken.add(token_id)
    # Filler entries give every id below the vocabulary size a token (as the real model's
    # reserved slots do); no merge produces them, so encoding never emits them.
    for token_id in range(GLM45_VOCAB_SIZE):
        if token_id not in taken:
            vocab[f"<|reserved_{token_id}|>"] = token_id
    data["added_tokens"] = [
        {
            "id": token_id,
            "content": token,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": token not in _NON_SPECIAL,
        }
        for token, token_id in GLM45_SPECIAL_TOKENS.items()
    ]
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def build_test_tokenizer(directory: str | Path | None = None) -> Path:
    """Return the path of the test tokenizer's ``tokenizer.json``, building it if needed.

    ``directory`` defaults to ``$AGENTKIT_CACHE_DIR`` or ``~/.cache/agentkit``; the file lives in
    a versioned sub-folder there. Building takes well under a second and is deterministic.
    """
    root = Path(directory).expanduser() if directory is not None else _cache_root()
    target = root / f"glm45-test-tokenizer-v{RECIPE_VERSION}-{_recipe_digest()}" / "tokenizer.json"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = _build_json()
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tokenizer-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(payload)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


@functools.lru_cache(maxsize=4)
def _load(path: str) -> HFTokenizersTokenizer:
    return HFTokenizersTokenizer.from_file(path)


def load_test_tokenizer(directory: str | Path | None = None) -> HFTokenizersTokenizer:
    """The test tokenizer, loaded once per process (it is read-only and thread-safe)."""
    return _load(str(build_test_tokenizer(directory)))
