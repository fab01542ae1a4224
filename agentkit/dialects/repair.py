"""The repair hint for a malformed tool call, by dialect.

``"glm45"`` and ``"hermes"`` are the dialects whose raw output agentkit parses (token mode, or a
chat server without a tool parser); ``"json"`` is a chat server that parses calls itself and
hands back JSON arguments, so the model only has to write valid JSON.
"""

from __future__ import annotations

from . import hermes
from .glm45 import repair as glm45_repair

JSON = "json"
GLM45 = "glm45"
HERMES = "hermes"


def json_repair_hint() -> str:
    return 'Call the tool again with valid JSON arguments: one object, e.g. {"key": "value"}.'


def repair_hint(dialect: str | None) -> str:
    """The hint for ``dialect`` (GLM-4.5 when unknown or ``None``)."""
    if dialect == JSON:
        return json_repair_hint()
    if dialect == HERMES:
        return hermes.repair_hint()
    return glm45_repair.repair_hint()
