"""What tau2's retail and airline toolkits share: the ``calculate`` tool's arithmetic, with
tau2's error texts (an invalid character or a failed evaluation raises ``ValueError``)."""

from __future__ import annotations

from agentkit.envs.domains.common import calculate_expression

_ALLOWED = frozenset("0123456789+-*/(). ")


def calculate(expression: str) -> str:
    """The expression's value rounded to 2 decimals, as text (tau2's ``calculate``)."""
    if not all(char in _ALLOWED for char in expression):
        raise ValueError("Invalid characters in expression")
    result = calculate_expression({}, expression)
    if result.startswith("Error: "):
        raise ValueError(result.removeprefix("Error: "))
    return result
