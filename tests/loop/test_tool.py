"""``@tool``: schemas from type hints and docstrings, validation, threads, timeouts, limits."""

from __future__ import annotations

import threading
from typing import Literal

import anyio
import anyio.lowlevel
import pytest
from pydantic import BaseModel

from agentkit.tool import RunContext, Tool, ToolError, ToolStatus, parse_docstring, tool, truncate

pytestmark = pytest.mark.anyio
CTX: RunContext[None] = RunContext(deps=None)


class Item(BaseModel):
    sku: str
    qty: int


@tool
def order(
    items: list[Item], priority: Literal["low", "high"] = "low", note: str | None = None
) -> str:
    """Place an order.

    Args:
        items: What to order,
            one entry per product.
        priority: How urgent.
        note: Free text.

    Returns:
        The order id.
    """
    return f"{len(items)}:{priority}:{note}"


def test_schema_comes_from_hints_and_docstring() -> None:
    schema = order.schema()
    fn = schema["function"]
    assert schema["type"] == "function" and fn["name"] == "order"
    assert fn["description"] == "Place an order."
    params = fn["parameters"]
    assert params["required"] == ["items"]
    assert params["properties"]["priority"]["enum"] == ["low", "high"]
    assert params["properties"]["items"]["description"] == "What to order, one entry per product."
    assert params["additionalProperties"] is False
    assert "$defs" in params and "Item" in params["$defs"]


def test_parse_docstring_ignores_other_sections() -> None:
    summary, args = parse_docstring("Do it.\n\nArgs:\n    a (int): first\n\nRaises:\n    b: no")
    assert summary == "Do it." and args == {"a": "first"}


async def test_valid_call_coerces_nested_models() -> None:
    outcome = await order.call({"items": [{"sku": "a", "qty": "2"}], "priority": "high"}, CTX)
    assert outcome.status is ToolStatus.OK and outcome.output == "1:high:None"


async def test_invalid_arguments_name_the_field() -> None:
    outcome = await order.call({"items": [{"sku": "a"}], "priority": "urgent"}, CTX)
    assert outcome.status is ToolStatus.INVALID_ARGUMENTS
    assert "items.0.qty" in (outcome.error or "") and "priority" in (outcome.error or "")


async def test_sync_tools_run_in_worker_threads() -> None:
    main = threading.get_ident()

    @tool
    def where() -> int:
        """Thread id."""
        return threading.get_ident()

    outcome = await where.call({}, CTX)
    assert int(outcome.output) != main


async def test_timeout_and_tool_error_and_exception() -> None:
    @tool(timeout=0.05)
    async def slow() -> str:
        """Slow."""
        await anyio.sleep(5)
        return "x"

    @tool
    def clean() -> str:
        """Clean error."""
        raise ToolError("no such order")

    @tool
    def crash() -> str:
        """Crash."""
        return str(1 / 0)

    assert (await slow.call({}, CTX)).status is ToolStatus.TIMEOUT
    clean_outcome = await clean.call({}, CTX)
    assert (
        clean_outcome.status is ToolStatus.ERROR and clean_outcome.output == "Error: no such order"
    )
    crash_outcome = await crash.call({}, CTX)
    assert crash_outcome.error_type == "ZeroDivisionError" and "division" in crash_outcome.output


async def test_output_limit_truncates_and_reports() -> None:
    @tool(max_output_chars=200)
    def big() -> str:
        """Big."""
        return "a" * 5000 + "TAIL"

    outcome = await big.call({}, CTX)
    assert outcome.truncated and len(outcome.output) <= 200
    assert outcome.raw_chars == 5004 and outcome.output.endswith("TAIL")
    assert "truncated" in outcome.output


def test_truncate_leaves_short_text_alone() -> None:
    assert truncate("abc", 10) == ("abc", False)


async def test_raw_schema_tool_checks_required_and_types() -> None:
    async def handler(args: dict[str, object], ctx: RunContext[None]) -> str:
        return str(args["order_id"])

    raw = Tool(
        "cancel",
        "Cancel.",
        {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
        handler,
    )
    assert (await raw.call({"order_id": "#1"}, CTX)).output == "#1"
    bad = await raw.call({"n": True, "zzz": 1}, CTX)
    assert bad.status is ToolStatus.INVALID_ARGUMENTS
    assert "order_id: field required" in (bad.error or "")
    assert "zzz: unexpected" in (bad.error or "") and "n: expected integer" in (bad.error or "")


def test_bad_tool_names_are_refused() -> None:
    with pytest.raises(ValueError, match="tool name"):
        Tool("has space", "", {}, lambda a, c: anyio.lowlevel.checkpoint())  # type: ignore[arg-type,return-value]


class _NoText:
    def __str__(self) -> str:
        raise RuntimeError("cannot render")

    __repr__ = __str__


class _SilentError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message either")


async def test_results_and_errors_that_cannot_be_shown_are_tool_errors() -> None:
    @tool
    def unprintable() -> object:
        """Returns an object without text."""
        return _NoText()

    @tool
    def silent() -> str:
        """Raises an exception without text."""
        raise _SilentError

    shown = await unprintable.call({}, CTX)
    assert shown.status is ToolStatus.ERROR
    assert "cannot be shown" in shown.output and "cannot render" in shown.output
    failed = await silent.call({}, CTX)
    assert failed.status is ToolStatus.ERROR and failed.error_type == "_SilentError"
    assert "whose message cannot be shown" in failed.output


async def test_a_crashing_argument_check_is_invalid_arguments() -> None:
    async def handler(arguments: dict[str, object], ctx: RunContext[None]) -> str:
        return "never"

    schema = {"type": "object", "properties": {"x": {"type": [{}]}}}  # a broken schema
    broken = Tool("broken", "Broken schema.", schema, handler)
    outcome = await broken.call({"x": 1}, CTX)
    assert outcome.status is ToolStatus.INVALID_ARGUMENTS
    assert "argument validation failed" in outcome.output
