"""The main job's default: a small agent with real tools and a scripted stand-in model.

With no model server configured and no embedded model installed, ``agentkit run`` starts the
SGLang test server in-process with :func:`scripted_calculator_policy`: a rule-based policy (not a
language model) that writes GLM-4.5's raw tool-call markup for the arithmetic in the question and
then answers from the tool's result. Everything between the two (the HTTP protocol, template,
parsers, tool execution, recording) is the real runtime.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from agentkit.tool import ToolError, tool

_OPS: dict[type[ast.AST], Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(node: ast.AST) -> float | int:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ToolError("exponent too large")
        result: float | int = _OPS[type(node.op)](left, right)
        return result
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        value: float | int = _OPS[type(node.op)](_evaluate(node.operand))
        return value
    raise ToolError(f"unsupported expression element: {type(node).__name__}")


ARITHMETIC = "arithmetic-expression"  # a JSON-schema format; constrained models obey it


@tool
def calculator(
    expression: Annotated[str, Field(json_schema_extra={"format": ARITHMETIC})],
) -> str:
    """Evaluate an arithmetic expression exactly (+ - * / // % ** and parentheses).

    Args:
        expression: The whole expression, e.g. "(2 + 3) * 4".
    """
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolError(f"not an arithmetic expression: {exc.msg}") from exc
    try:
        value = _evaluate(tree)
    except ZeroDivisionError as exc:
        raise ToolError("division by zero") from exc
    return str(value)


@tool
def current_time() -> str:
    """The current UTC date and time in ISO 8601."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


DEMO_TOOLS = [calculator, current_time]

_EXPR = re.compile(r"[\d(][\d\s.+\-*/%()]*[\d)]")


def scripted_calculator_policy(request: Any) -> str:
    """Raw GLM-4.5 output for the demo: call ``calculator`` on the question's arithmetic, then
    answer with the tool's result (or say what the tool said when it failed)."""
    messages: list[dict[str, Any]] = list(request.messages)
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        result = str(last.get("content", ""))
        if result.startswith("Error"):
            return f"<think>The tool failed.</think>\nThe calculator reported a problem: {result}"
        return f"<think>The calculator returned {result}.</think>\nThe answer is {result}."
    question = str(last.get("content", ""))
    found = max(_EXPR.findall(question), key=len, default="")
    if any(ch.isdigit() for ch in found) and any(op in found for op in "+-*/%"):
        return (
            "<think>This needs exact arithmetic, so I will use the calculator.</think>\n"
            f"<tool_call>calculator\n<arg_key>expression</arg_key>\n"
            f"<arg_value>{found.strip()}</arg_value>\n</tool_call>"
        )
    return "<think>I will check the time.</think>\n<tool_call>current_time\n</tool_call>"


@dataclass(frozen=True)
class AnswerCheckNote:
    ok: bool
    line: str


def answer_check(result: Any) -> AnswerCheckNote | None:
    """The embedded model's check of its final answer against the last tool result, as one line
    for the terminal (None when the run's last model call carried no check)."""
    calls = result.trajectory.calls
    meta = calls[-1].engine_meta if calls else None
    check = meta.get("answer_check") if isinstance(meta, dict) else None
    if not isinstance(check, dict):
        return None
    ok = bool(check.get("ok"))
    detail = str(check.get("detail", ""))
    if ok:
        return AnswerCheckNote(True, f"[answer check: ok] {detail}")
    if check.get("corrected"):
        wrote = json.dumps(str(check.get("model_answer", "")), ensure_ascii=False)
        return AnswerCheckNote(
            False,
            f"[answer check: CORRECTED] {detail}; the model wrote {wrote}, so the answer above "
            "is the tool's result, not the model's",
        )
    return AnswerCheckNote(False, f"[answer check: FAILED] {detail}")
