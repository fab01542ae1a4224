"""The final answer of a run: validating it against the output type, and retry prompts."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from agentkit.messages import AssistantMessage, Message
from agentkit.tool import ToolOutcome, describe_exception

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class OutputInvalid(Exception):
    """The final answer did not validate (the model is asked again, up to ``output_retries``)."""


def final_text(message: Message) -> str:
    return message.content.strip() if isinstance(message, AssistantMessage) else ""


def validate_output(output_type: type[BaseModel], text: str) -> BaseModel:
    """Validate the final answer: a JSON object (optionally in a code fence) for the model.

    Raises :class:`OutputInvalid` for any failure, including a validator of the output type
    that raised something other than a validation error."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    if not body.startswith("{"):
        start, end = body.find("{"), body.rfind("}")
        if start == -1 or end <= start:
            raise OutputInvalid("the final answer contains no JSON object")
        body = body[start : end + 1]
    try:
        return output_type.model_validate_json(body)
    except ValidationError as exc:
        raise OutputInvalid(str(exc)) from exc
    except Exception as exc:  # a custom validator that crashed
        raise OutputInvalid(f"validation raised {describe_exception(exc)}") from exc


def final_from_outcome(output_type: type[BaseModel] | None, outcome: ToolOutcome) -> Any:
    if output_type is None:
        return outcome.output
    return output_type.model_validate_json(outcome.output)


def retry_prompt(output_type: type[BaseModel], exc: Exception) -> str:
    schema = json.dumps(output_type.model_json_schema(), ensure_ascii=False)
    return (
        f"Your final answer did not validate: {exc}\n"
        f"Reply with only a JSON object that matches this schema:\n{schema}"
    )


def jsonable(value: Any) -> Any:
    """``value`` as something the record can hold as JSON (its text when nothing else works)."""
    try:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        json.dumps(value, allow_nan=False)
    except Exception:
        try:
            return str(value)
        except Exception as exc:
            return f"<unprintable {type(value).__name__}: {describe_exception(exc)}>"
    return value
