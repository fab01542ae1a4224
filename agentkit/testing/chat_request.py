"""The ``/v1/chat/completions`` request as SGLang reads it: validated, with its messages
normalised for the GLM-4.5 template and the tools the prompt offers."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BadRequest", "ChatRequest", "enable_thinking", "normalize_messages", "prompt_tools"]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    messages: list[dict[str, Any]] = Field(min_length=1)
    model: str = "default"
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    separate_reasoning: bool = True
    stream_reasoning: bool = True
    skip_special_tokens: bool = True
    no_stop_trim: bool = False
    ignore_eos: bool = False
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = None
    n: int = 1
    logprobs: bool = False
    rid: str | None = None
    return_token_ids: bool = False
    return_meta_info: bool = False
    return_spec_tokens_details: bool = False
    return_cached_tokens_details: bool = False
    return_input_ids_in_sglext: bool = False
    return_output_ids_in_sglext: bool = False

    def max_new_tokens(self, context_length: int, prompt_len: int) -> int:
        """``max_completion_tokens``, else ``max_tokens``, else what the context has left."""
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens
        if self.max_tokens is not None:
            return self.max_tokens
        return max(0, context_length - prompt_len)

    def stop_strings(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class BadRequest(ValueError):
    """A request SGLang answers with 400 and this message."""


def _text_of(content: Any, joiner: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, dict) and item.get("type") == "text":
                parts.append(str(item.get("text", "")))
        return joiner.join(parts)
    return str(content)


def normalize_messages(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as SGLang hands them to the template: text content, argument mappings."""
    out = []
    for message in raw:
        role = message.get("role")
        if role not in {"system", "developer", "user", "assistant", "tool", "function"}:
            raise BadRequest(f"unknown message role: {role!r}")
        item = dict(message)
        item["content"] = _text_of(message.get("content"), " " if role == "tool" else "")
        calls = message.get("tool_calls")
        if role == "assistant" and calls:
            item["tool_calls"] = [_normalize_call(call) for call in calls]
        out.append(item)
    return out


def _normalize_call(call: Any) -> dict[str, Any]:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise BadRequest("assistant tool_calls entries need a 'function' object")
    function = dict(call["function"])
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            raise BadRequest("Assistant tool call function.arguments must be valid JSON.") from exc
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise BadRequest("Assistant tool call function.arguments must be a JSON object.")
    function["arguments"] = arguments
    return {**call, "function": function}


def prompt_tools(req: ChatRequest) -> list[dict[str, Any]]:
    """The tools rendered into the prompt (``tool_choice`` may narrow them to one or none)."""
    if not req.tools or req.tool_choice == "none":
        return []
    if isinstance(req.tool_choice, dict):
        wanted = (req.tool_choice.get("function") or {}).get("name")
        chosen = [t for t in req.tools if (t.get("function") or {}).get("name") == wanted]
        if not chosen:
            raise BadRequest(f"tool_choice names an unknown function: {wanted!r}")
        return chosen
    return list(req.tools)


def enable_thinking(req: ChatRequest) -> bool:
    kwargs = dict(req.chat_template_kwargs or {})
    if req.reasoning_effort == "none":
        kwargs.setdefault("enable_thinking", False)
    return kwargs.get("enable_thinking", True) is not False
