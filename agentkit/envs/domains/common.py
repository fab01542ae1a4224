"""Tools every tau-bench domain has (``calculate``, ``think``, ``transfer_to_human_agents``, each a
:class:`~agentkit.envs.domain.DomainTool`) and the schema helpers the domains' tools use."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from agentkit.envs.domain import DomainTool

_ALLOWED_CHARS = frozenset("0123456789+-*/(). ")
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_MAX_EXPONENT = 1000


def string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def string_list(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


def cancel_reason() -> dict[str, Any]:
    """The schema of an order cancellation's reason (tau-bench retail's two reasons)."""
    return {
        "type": "string",
        "enum": ["no longer needed", "ordered by mistake"],
        "description": "Why the order is cancelled.",
    }


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An object schema; every property is required unless ``required`` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise OverflowError("exponent too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    raise ValueError("unsupported expression")


def calculate_expression(data: dict[str, Any], expression: str) -> str:
    if not all(char in _ALLOWED_CHARS for char in expression):
        return "Error: invalid characters in expression"
    try:
        tree = ast.parse(expression.strip(), filename="<string>", mode="eval")
        return str(round(float(_evaluate(tree)), 2))
    except Exception as exc:
        return f"Error: {exc}"


def _think(data: dict[str, Any], thought: str) -> str:
    return ""


def _transfer_to_human_agents(data: dict[str, Any], summary: str) -> str:
    return "Transfer successful"


calculate = DomainTool(
    "calculate",
    "Evaluate an arithmetic expression and return the result rounded to 2 decimals.",
    obj(
        {
            "expression": string(
                "Arithmetic over numbers with +, -, *, /, parentheses and spaces, e.g. '12.5 * 3 - 4'."
            )
        }
    ),
    calculate_expression,
)

think = DomainTool(
    "think",
    "Write down reasoning or a plan. It changes nothing and fetches nothing; use it when a "
    "problem needs working out before acting.",
    obj({"thought": string("The reasoning to record.")}),
    _think,
)

transfer_to_human_agents = DomainTool(
    "transfer_to_human_agents",
    "Hand the customer over to a human agent, with a summary of the issue. Only when the "
    "customer asks for a human, or the request is outside what the policy and the tools allow.",
    obj({"summary": string("What the customer needs, in brief.")}),
    _transfer_to_human_agents,
    terminates=True,
)
