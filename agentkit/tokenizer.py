"""Token ids for token mode: a small ``Tokenizer`` protocol and a loader for a model's own files.

Token mode sends ``input_ids`` to SGLang's ``/generate``, so the client must encode exactly as
the server's tokenizer does. ``encode`` never adds BOS or other special tokens by itself (the
GLM-4.5 template writes ``[gMASK]<sop>`` literally) but does recognise special-token strings
written in the text; ``decode`` keeps special tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tokenizers import Tokenizer as _HFTokenizer
from tokenizers import decoders

__all__ = [
    "HFTokenizersTokenizer",
    "SegmentCache",
    "Tokenizer",
    "TransformersTokenizer",
    "load_tokenizer",
]


@runtime_checkable
class Tokenizer(Protocol):
    """What agentkit needs from a tokenizer."""

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def token_to_id(self, token: str) -> int | None: ...


# (left, right) text around an added token in the piecewise-encoding probes
_PROBES = (("hello", "world"), ("a ", " b"), ("", "x y"), ("x\n", "\n y"), (" ", "  z"))


def _byte_alphabet() -> dict[str, int]:
    """ByteLevel's character for each byte (GPT-2's table: printable Latin-1 bytes stand for
    themselves, the other bytes for the characters from U+0100 on), reversed."""
    kept = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars = {byte: byte for byte in kept}
    extra = 0
    for byte in range(256):
        if byte not in chars:
            chars[byte] = 256 + extra
            extra += 1
    return {chr(char): byte for byte, char in chars.items()}


_BYTE_OF = _byte_alphabet()
_MAX_BYTE_PIECES = 1 << 20


class _NotPlain(Exception):
    """An id the byte table does not take (not a non-negative 32-bit int)."""


def _token_bytes(token: str) -> bytes:
    """ByteLevel's bytes of one token: every character mapped back, or the token's UTF-8."""
    try:
        return bytes([_BYTE_OF[char] for char in token])
    except KeyError:
        return token.encode("utf-8")


def _plain_byte_level(inner: _HFTokenizer) -> bool:
    """Whether the tokenizer decodes with a ByteLevel decoder alone (no sequence of decoders)."""
    return type(inner.decoder) is decoders.ByteLevel


# The GPT-2 split of ``ByteLevel(use_regex=True)``, as the ``tokenizers`` library writes it.
_GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
# ASCII characters the word path does not take: control characters other than tab, newline and
# carriage return (engines disagree on whether some of them are whitespace)
_ODD_ASCII = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_WORDS = 1 << 17
# texts the word path must encode as the library does before it is used (_WordEncoder.agrees)
_WORD_PROBES = (
    "hello world",
    "Hello, World! It's 42 o'clock; they'll say we'd've DONE it.",
    "  leading and trailing  ",
    "a\n\nb\r\n c \t\td\n  \n   e",
    "x = f(1, 2) + 3.75 * [4] // {'k': \"v\"}",
    '{"key": "value", "n": 12345678, "ok": true, "list": [1, 2.5, -3e9]}',
    "value of k3 (#17)\nvalue of key_9 (#1234)",
    "1234567 12 123 1 00007 3.14159 -0.5",
    "CamelCase snake_case kebab-case UPPER lower MiXeD",
    "tabs\tand\ttabs\t\t\tspaces    end\n",
    "\n",
    " ",
    "   ",
    "'S 'T 'RE 'VE 'M 'LL 'D 's 't 're 've 'm 'll 'd",
    '!@#$%^&*()_+-=[]{}|;:,.<>/?`~ \\ "',
    "def f(x):\n    return x  # comment\n\n\nclass A:\n\tpass\r\n",
)


def _ascii_pattern(pattern: str) -> re.Pattern[str] | None:
    """A split pattern of the library (Oniguruma syntax) as a ``re`` pattern that splits
    ASCII text alike: ``\\p{L}`` (letters) and ``\\p{N}`` (numbers) become their ASCII
    ranges; any other Unicode property, a nested class, an anchor, or a pattern ``re`` does
    not take gives ``None``."""
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            pair = pattern[index : index + 2]
            if pair == "\\P":  # a negated property
                return None
            if pair == "\\p":
                prop = pattern[index : index + 5]
                ranges = {"\\p{L}": "A-Za-z", "\\p{N}": "0-9"}.get(prop)
                if ranges is None:
                    return None
                out.append(ranges if in_class else f"[{ranges}]")
                index += 5
                continue
            out.append(pair)
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            out.append(char)
            if pattern[index + 1 : index + 2] == "^":
                out.append("^")
                index += 1
            if pattern[index + 1 : index + 2] == "]":  # a literal ] first in the class
                out.append("\\]")
                index += 1
        elif char == "[" or (not in_class and char in "^$"):
            return None  # a nested class; anchors (line anchors in Oniguruma's default syntax)
        elif char == "]" and in_class:
            in_class = False
            out.append(char)
        else:
            out.append(char)
        index += 1
    try:
        return re.compile("".join(out))
    except re.error:
        return None


# Unicode normal forms: each leaves ASCII text as it is
_ASCII_NORMAL_FORMS = frozenset({"NFC", "NFD", "NFKC", "NFKD"})


def _ascii_identity(normalizer: Any) -> bool:
    """Whether the normaliser leaves ASCII text unchanged: none, a Unicode normal form, or a
    sequence of those (GLM-4's and Qwen's tokenizers normalise to NFC)."""
    if normalizer is None:
        return True
    try:
        state = json.loads(normalizer.__getstate__())
    except (TypeError, ValueError):
        return False
    kind = state.get("type")
    if kind == "Sequence":
        parts = state.get("normalizers")
        return isinstance(parts, list) and all(
            isinstance(part, dict) and part.get("type") in _ASCII_NORMAL_FORMS for part in parts
        )
    return kind in _ASCII_NORMAL_FORMS


def _split_pattern(inner: _HFTokenizer) -> str | None:
    """The regex the pre-tokenizer splits with, when it is a byte-level one of the two usual
    shapes (``ByteLevel(use_regex=True)``: GPT-2's; ``Sequence[Split(regex, isolated),
    ByteLevel(use_regex=False)]``: GLM-4's, Qwen's), neither adding a prefix space."""
    if not _ascii_identity(inner.normalizer) or inner.pre_tokenizer is None:
        return None
    try:
        state = json.loads(inner.pre_tokenizer.__getstate__())
    except (TypeError, ValueError):
        return None
    if state.get("type") == "ByteLevel":
        plain = not state.get("add_prefix_space") and state.get("use_regex")
        return _GPT2_PATTERN if plain else None
    parts = state.get("pretokenizers") if state.get("type") == "Sequence" else None
    if not isinstance(parts, list) or len(parts) != 2:
        return None
    split, level = parts
    regex = split.get("pattern", {}).get("Regex") if isinstance(split, dict) else None
    if (
        not isinstance(regex, str)
        or split.get("type") != "Split"
        or split.get("behavior") != "Isolated"
        or split.get("invert")
        or not isinstance(level, dict)
        or level.get("type") != "ByteLevel"
        or level.get("add_prefix_space")
        or level.get("use_regex")
    ):
        return None
    return regex


class _WordEncoder:
    """Ids of a stretch of plain ASCII text without the library's per-call overhead: split into
    pre-tokens with ``re`` as the pre-tokenizer does, each pre-token's ids from a cache or the
    library's own BPE model. Built only for a byte-level BPE tokenizer with no normaliser but
    Unicode normal forms (the identity on ASCII), no truncation, padding or BPE dropout
    (:func:`word_encoder`; a post-processor adds special tokens only when asked to, which
    ``encode`` never does), and used only once it encodes a set of probe texts exactly as the
    library does."""

    def __init__(self, inner: _HFTokenizer, split: re.Pattern[str]) -> None:
        self._model = inner.model
        self._findall = split.findall
        # ByteLevel's character for each ASCII byte
        self._table = {byte: char for char, byte in _BYTE_OF.items() if byte < 128}
        self._words: dict[str, list[int]] = {}

    def encode(self, text: str) -> list[int] | None:
        """The ids of ``text`` (which holds no added token), or ``None`` when it is not text
        this path takes (non-ASCII, odd control characters, a stretch the split leaves out)."""
        if not text.isascii() or _ODD_ASCII.search(text) is not None:
            return None
        pieces: list[str] = self._findall(text)
        if sum(map(len, pieces)) != len(text):  # a gap the split did not match: the library's
            return None
        words = self._words
        ids: list[int] = []
        for piece in pieces:
            found = words.get(piece)
            if found is None:
                found = [token.id for token in self._model.tokenize(piece.translate(self._table))]
                if len(words) >= _MAX_WORDS:
                    words.clear()
                words[piece] = found
            ids.extend(found)
        return ids

    def agrees(self, library_encode: Any) -> bool:
        """Whether every probe text encodes here exactly as with ``library_encode``."""
        return all(self.encode(text) == library_encode(text) for text in _WORD_PROBES)


def word_encoder(inner: _HFTokenizer) -> _WordEncoder | None:
    """The word path for this tokenizer, or ``None`` when its pipeline is not one it copies or a
    probe text encodes differently."""
    pattern = _split_pattern(inner)
    model = inner.model
    if (
        pattern is None
        or type(model).__name__ != "BPE"
        or getattr(model, "dropout", None)
        or inner.truncation is not None
        or inner.padding is not None
    ):
        return None
    split = _ascii_pattern(pattern)
    if split is None:
        return None
    encoder = _WordEncoder(inner, split)

    def library(text: str) -> list[int]:
        ids: list[int] = inner.encode(text, add_special_tokens=False).ids
        return ids

    return encoder if encoder.agrees(library) else None


class HFTokenizersTokenizer:
    """A ``tokenizer.json`` loaded with the ``tokenizers`` library."""

    def __init__(self, inner: _HFTokenizer, *, source: str = "") -> None:
        self._inner = inner
        self.source = source
        self._vocab_size = inner.get_vocab_size(with_added_tokens=True)
        self._split_exactly: bool | None = None
        added = inner.get_added_tokens_decoder()
        self._special_ids = frozenset(
            token_id for token_id, token in added.items() if token.special
        )
        # ids -> bytes, for decoding without the library (only with a plain ByteLevel decoder,
        # and only once a probe of the vocabulary decodes the same both ways: _check_table)
        self._byte_pieces: dict[int, bytes] | None = {} if _plain_byte_level(inner) else None
        self._table_checked = False
        self._words: _WordEncoder | None = None
        self._words_checked = False

    @classmethod
    def from_file(cls, path: str | Path) -> HFTokenizersTokenizer:
        return cls(_HFTokenizer.from_file(str(path)), source=str(path))

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def special_ids(self) -> frozenset[int]:
        """Ids of the added tokens marked ``special`` (removed by ``skip_special_tokens``)."""
        return self._special_ids

    def encode(self, text: str) -> list[int]:
        ids: list[int] = self._inner.encode(text, add_special_tokens=False).ids  # a new list
        return ids

    def encode_stretch(self, text: str) -> list[int]:
        """``encode`` of a text that holds no added token (a stretch between them), through the
        word path when this tokenizer has one and the text is plain ASCII (:func:`word_encoder`:
        the same ids, without the library's per-call cost). The list is a new one."""
        if not self._words_checked:
            self._words_checked = True
            self._words = word_encoder(self._inner)
        if self._words is not None:
            ids = self._words.encode(text)
            if ids is not None:
                return ids
        return self.encode(text)

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        """The text of ``ids`` (special tokens kept unless ``skip_special_tokens``).

        With a plain ByteLevel decoder (GLM-4.5's, GPT-2's) this is done here, as the library
        does it: each token's bytes (its characters mapped back through the byte alphabet, added
        tokens too, or its own UTF-8 when a character is outside it), joined, then read as
        UTF-8 with each invalid stretch replaced by U+FFFD; unknown ids give nothing. The bytes of
        each id are kept. The table is used only after a probe of the vocabulary decoded the same
        with it as with the installed library (:meth:`_check_table`). Anything else (skipping special tokens, other decoders, ids that are
        not non-negative ints) goes to the library."""
        if not self._table_checked:
            self._check_table()
        pieces = self._byte_pieces
        if pieces is None or skip_special_tokens:
            return self._inner.decode(list(ids), skip_special_tokens=skip_special_tokens)
        try:
            # the pieces of two or more ids in one C call (an itemgetter of one id gives the
            # piece itself, not a tuple)
            found = itemgetter(*ids)(pieces) if len(ids) > 1 else map(pieces.__getitem__, ids)
            data = b"".join(found)
        except (KeyError, TypeError):
            try:
                data = b"".join([self._byte_piece(i) for i in ids])
            except _NotPlain:
                return self._inner.decode(list(ids), skip_special_tokens=False)
        return data.decode("utf-8", "replace")

    def _check_table(self) -> None:
        """Use the byte table only if it decodes a probe as the installed library does: the
        first 512 ids, an even spread over the rest of the vocabulary and every added token,
        alone and joined (a library version that decodes some token differently turns the
        table off for this tokenizer)."""
        self._table_checked = True
        if self._byte_pieces is None:
            return
        size = self._vocab_size
        probe = sorted(
            {*range(min(size, 512)), *range(512, size, max(1, size // 2048)), *self._added_ids()}
        )
        samples = [probe, *([i] for i in self._added_ids())]
        try:
            same = all(
                b"".join([self._byte_piece(i) for i in ids]).decode("utf-8", "replace")
                == self._inner.decode(ids, skip_special_tokens=False)
                for ids in samples
            )
        except _NotPlain:
            same = False
        if not same:
            self._byte_pieces = None

    def _added_ids(self) -> list[int]:
        return sorted(self._inner.get_added_tokens_decoder())

    def _byte_piece(self, token_id: int) -> bytes:
        pieces = self._byte_pieces
        assert pieces is not None
        found = pieces.get(token_id) if type(token_id) is int else None
        if found is not None:
            return found
        if type(token_id) is not int or token_id < 0 or token_id >= 1 << 32:
            raise _NotPlain
        token = self._inner.id_to_token(token_id)
        piece = b"" if token is None else _token_bytes(token)
        if len(pieces) < _MAX_BYTE_PIECES:
            pieces[token_id] = piece
        return piece

    def added_tokens(self) -> dict[str, int]:
        """Added (special and tag) tokens: matched in text before any other tokenisation."""
        return {
            added.content: token_id
            for token_id, added in self._inner.get_added_tokens_decoder().items()
        }

    def added_tokens_split_exactly(self) -> bool:
        """True when encoding text piecewise at added tokens equals encoding it whole: no added
        token strips neighbouring whitespace, needs word boundaries or is normalised first, and
        probes (words, spaces and newlines on both sides of a few added tokens) encode alike
        both ways. The probes catch pre-tokenizers that treat the start of the whole text
        differently from the start of a stretch (``Metaspace(prepend_scheme="first")``)."""
        if self._split_exactly is None:
            decoder = self._inner.get_added_tokens_decoder()
            flags_ok = not any(
                added.lstrip or added.rstrip or added.single_word or added.normalized
                for added in decoder.values()
            )
            self._split_exactly = flags_ok and all(
                self._probe_splits_exactly(added.content, token_id)
                for token_id, added in list(decoder.items())[:4]
            )
        return self._split_exactly

    def _probe_splits_exactly(self, token: str, token_id: int) -> bool:
        for left, right in _PROBES:
            whole = self.encode(f"{left}{token}{right}")
            pieces = (self.encode(left) if left else []) + [token_id]
            pieces += self.encode(right) if right else []
            if whole != pieces:
                return False
        return True

    def token_to_id(self, token: str) -> int | None:
        return self._inner.token_to_id(token)

    def __repr__(self) -> str:
        return f"HFTokenizersTokenizer({self.source!r}, vocab_size={self._vocab_size})"


class TransformersTokenizer:
    """Fallback for model folders without ``tokenizer.json`` (needs ``transformers``)."""

    def __init__(self, inner: Any, *, source: str = "") -> None:
        self._inner = inner
        self.source = source

    @property
    def vocab_size(self) -> int:
        return len(self._inner)

    def encode(self, text: str) -> list[int]:
        return [int(i) for i in self._inner.encode(text, add_special_tokens=False)]

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        return str(self._inner.decode(list(ids), skip_special_tokens=skip_special_tokens))

    def token_to_id(self, token: str) -> int | None:
        token_id = self._inner.convert_tokens_to_ids(token)
        unk = getattr(self._inner, "unk_token_id", None)
        if token_id is None or (
            token_id == unk and token != getattr(self._inner, "unk_token", None)
        ):
            return None
        return int(token_id)


def literal_trie(words: Sequence[str]) -> str:
    """A regex matching any of ``words`` (literals), the longest one where several match at a
    place, as the alternation of them longest first does; written as a trie (shared prefixes
    once), which ``re`` scans about twice as fast as that alternation of 36 added tokens."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # a word ends here

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        inner = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        # a word ending here: the longer ones first (greedy), then this one
        return f"(?:{inner})?" if "" in node else inner

    return emit(trie)


_MAX_HEADS = 64  # SegmentCache.encode_joined's heads kept (one per tool list, mostly)


class SegmentCache:
    """``encode`` that remembers the ids of each stretch of text between added tokens.

    A ``tokenizers`` tokenizer cuts its input at added tokens (``<|system|>``, ``<think>``, the
    tool tags ...) before anything else and encodes each stretch between them on its own, so
    the ids of a text are the ids of its stretches in order. Token mode encodes the same system
    prompt and tool block at the start of every episode; with this only the new stretches
    (the user's first question) reach the tokenizer, and the ids are the same as a whole
    ``encode``. That holds only when no added token strips its neighbours' whitespace,
    needs word boundaries or is normalised (:meth:`HFTokenizersTokenizer.added_tokens_split_exactly`);
    for any other tokenizer this is a plain ``encode``.

    At most ``max_chars`` characters of text are kept (then the cache starts over); a stretch
    longer than ``max_piece_chars`` is encoded and not kept.
    """

    def __init__(
        self, tokenizer: Tokenizer, *, max_chars: int = 2_000_000, max_piece_chars: int = 65_536
    ) -> None:
        self.tokenizer = tokenizer
        self._max_chars = max_chars
        self._max_piece = max_piece_chars
        self._cache: dict[str, list[int]] = {}
        self._chars = 0
        self._added: dict[str, int] = {}
        self._split: re.Pattern[str] | None = None
        self._encode_stretch = tokenizer.encode
        # encode_joined's heads: their ids, or None where the split may not cut after them
        self._heads: dict[str, list[int] | None] = {}
        if isinstance(tokenizer, HFTokenizersTokenizer) and tokenizer.added_tokens_split_exactly():
            self._encode_stretch = tokenizer.encode_stretch
            self._added = tokenizer.added_tokens()
            # at each place the longest token that matches (never one it starts with)
            names = [name for name in self._added if name]
            self._split = re.compile(f"({literal_trie(names)})") if names else None

    def encode(self, text: str, *, keep: bool = True) -> list[int]:
        """The ids of ``text``. With ``keep=False`` (text seldom seen twice: a tool's result) the
        stretches already known are taken from the cache and only whitespace stretches are
        added to it; the tokenizer still sees nothing but the new stretches."""
        if self._split is None:
            return self.tokenizer.encode(text)
        ids: list[int] = []
        for index, piece in enumerate(self._split.split(text)):
            if index % 2:  # the split keeps the added tokens at odd positions
                ids.append(self._added[piece])
            elif piece:
                ids.extend(self._stretch(piece, keep or piece.isspace()))
        return ids

    def encode_joined(self, head: str, tail: str) -> list[int]:
        """``encode(head + tail)`` with the ids of ``head`` kept (a first prompt's fixed start:
        the prompt prefix and the tools block), so that only ``tail`` is split and looked up.

        Used only for a head whose split ends with an added token and whose end is not the
        start of any added token (no added token can begin in the head and run on into the
        tail): the split of ``head + tail`` is then the head's pieces then the tail's, as
        the split matches literals left to right, so the ids are the head's then the tail's.
        Any other head is encoded with its tail, as ``encode`` does. Equal to ``encode`` of
        the joined text: tests/models/test_token_perf_segments.py (hypothesis)."""
        if self._split is None:
            return self.tokenizer.encode(head + tail)
        heads = self._heads
        if head in heads:
            ids = heads[head]
        else:
            if len(heads) >= _MAX_HEADS:
                heads.clear()
            ids = heads[head] = self._head_ids(head)
        if ids is None:
            return self.encode(head + tail)
        return ids + self.encode(tail)  # a new list

    def _head_ids(self, head: str) -> list[int] | None:
        """The ids of ``head`` when the split provably cuts right after it, else None."""
        assert self._split is not None
        pieces = self._split.split(head)
        if len(pieces) < 3 or pieces[-1]:  # no added token, or text after the last one
            return None
        for name in self._added:
            if any(head.endswith(name[:cut]) for cut in range(1, len(name))):
                return None  # an added token could start in the head and end in the tail
        return self.encode(head)

    def _stretch(self, piece: str, keep: bool = True) -> list[int]:
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        encoded = self._encode_stretch(piece)
        if keep and len(piece) <= self._max_piece:
            if self._chars + len(piece) > self._max_chars:
                self._cache.clear()
                self._chars = 0
            self._cache[piece] = encoded
            self._chars += len(piece)
        return encoded


def load_tokenizer(path: str | Path) -> HFTokenizersTokenizer | TransformersTokenizer:
    """Load a model's tokenizer from a ``tokenizer.json`` file or a model folder.

    A folder's own ``tokenizer.json`` is read with ``tokenizers``; only when there is none does
    this fall back to ``transformers.AutoTokenizer`` (if installed).
    """
    target = Path(path).expanduser()
    if target.is_file():
        return HFTokenizersTokenizer.from_file(target)
    if target.is_dir():
        candidate = target / "tokenizer.json"
        if candidate.is_file():
            return HFTokenizersTokenizer.from_file(candidate)
        try:
            from transformers import AutoTokenizer  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise FileNotFoundError(
                f"{target} has no tokenizer.json and transformers is not installed"
            ) from exc
        return TransformersTokenizer(AutoTokenizer.from_pretrained(str(target)), source=str(target))
    raise FileNotFoundError(f"no tokenizer at {target}")
