"""A token-mode model over verl's LLM server manager (``server_manager.generate``).

verl's rollout hands an agent loop a server manager whose ``generate(request_id, *,
prompt_ids, sampling_params)`` returns a ``TokenOutput`` (``token_ids``, ``log_probs``,
``stop_reason``). :class:`VerlTokens` is :class:`~agentkit.models.sglang_tokens.SGLangTokens`
with its transport swapped for one that calls that method instead of HTTP: the same GLM-4.5
rendering, append-only token context and call records, so what verl trains on is exactly what
its servers saw and sent. The request id is the episode's routing key (verl's sticky session:
every call of an episode goes to one server, its prefix cache hits).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from agentkit.models.base import ModelSettings
from agentkit.models.failures import ProtocolError
from agentkit.models.sglang_tokens import SGLangTokens
from agentkit.models.transport import Body, RetryPolicy, Transport
from agentkit.models.urls import ROUTING_KEY_HEADER
from agentkit.tokenizer import Tokenizer, TransformersTokenizer

SERVER_MANAGER_URL = "http://verl-server-manager"
"""The placeholder server name in call records (no HTTP is made)."""


class ServerManager(Protocol):
    """What agentkit uses of verl's ``LLMServerClient`` / ``AsyncLLMServerManager``."""

    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any]
    ) -> Any: ...


class ServerManagerTransport(Transport):
    """A transport whose one "POST /generate" is ``server_manager.generate``; the reply is put
    in SGLang's ``/generate`` shape so the token session validates and records it as usual."""

    def __init__(
        self,
        server_manager: ServerManager,
        stop_token_ids: list[int],
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(retry or RetryPolicy(max_attempts=1))
        self.server_manager = server_manager
        self.stop_token_ids = set(stop_token_ids)

    async def _post_once(
        self, url: str, body: Body, headers: Mapping[str, str] | None
    ) -> dict[str, Any]:
        # token mode sends its body encoded (the input_ids' JSON kept from call to call)
        request: dict[str, Any] = json.loads(body) if isinstance(body, bytes) else body
        sampling = dict(request["sampling_params"])
        sampling["logprobs"] = bool(request.get("return_logprob"))
        request_id = (headers or {}).get(ROUTING_KEY_HEADER) or str(request["rid"])
        out = await self.server_manager.generate(
            request_id, prompt_ids=list(request["input_ids"]), sampling_params=sampling
        )
        return self._as_generate_reply(out, len(request["input_ids"]), sampling["logprobs"])

    def _as_generate_reply(self, out: Any, prompt_len: int, logprobs: bool) -> dict[str, Any]:
        ids = [int(i) for i in getattr(out, "token_ids", None) or []]
        log_probs = getattr(out, "log_probs", None)
        if logprobs and (log_probs is None or len(log_probs) != len(ids)):
            raise ProtocolError("verl's server returned no log-prob per output token")
        stop_reason = getattr(out, "stop_reason", None)
        finish: dict[str, Any]
        if stop_reason == "aborted":
            finish = {"type": "abort", "message": "aborted by verl's server"}
        elif ids and ids[-1] in self.stop_token_ids:
            finish = {"type": "stop", "matched": ids[-1]}
        else:
            finish = {"type": "length", "length": len(ids)}
        meta: dict[str, Any] = {
            "finish_reason": finish,
            "prompt_tokens": prompt_len,
            "completion_tokens": len(ids),
        }
        if logprobs and log_probs is not None:
            meta["output_token_logprobs"] = [
                [float(lp), i, None] for lp, i in zip(log_probs, ids, strict=True)
            ]
        extra = getattr(out, "extra_fields", None)
        if isinstance(extra, dict) and "weight_version" in extra:
            meta["weight_version"] = extra["weight_version"]
        return {"text": "", "output_ids": ids, "meta_info": meta}


class VerlTokens(SGLangTokens):
    """Token mode over verl's server manager; ``tokenizer`` is verl's (a Hugging Face
    tokenizer) or an agentkit :class:`~agentkit.tokenizer.Tokenizer`."""

    def __init__(
        self,
        server_manager: ServerManager,
        tokenizer: Any,
        *,
        model: str = "verl",
        settings: ModelSettings | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        wrapped: Tokenizer = (
            tokenizer if hasattr(tokenizer, "token_to_id") else TransformersTokenizer(tokenizer)
        )
        super().__init__(SERVER_MANAGER_URL, wrapped, model=model, settings=settings)
        self.transport = ServerManagerTransport(server_manager, self.stop_token_ids, retry)
