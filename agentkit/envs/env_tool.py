"""The one tool shape of the benchmark environments, tau-bench's domains and tau2's: an agentkit
:class:`~agentkit.tool.Tool` that acts on the episode passed as ``ctx.deps``.

The benchmarks fix the contract: arguments reach the environment exactly as the model sent them
(no validation, no coercion: the database hash tells ``150`` from ``150.0``), nothing is cut or
timed out, and an error observation (``"Error: ..."``) is an error outcome whose text the model
sees unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from agentkit.tool import RunContext, Tool, ToolError

ERROR_PREFIX = "Error: "
TOOL_OUTPUT_LIMIT = 50_000_000  # the benchmarks never truncate tool output

EpisodeT = TypeVar("EpisodeT")


class EnvTool(Tool, Generic[EpisodeT]):
    """A tool over one episode of type :attr:`episode_type`; subclasses say what a call does
    (:meth:`observe`)."""

    episode_type: ClassVar[type[Any]]

    def __init__(self, name: str, description: str, parameters: Mapping[str, Any]) -> None:
        super().__init__(
            name,
            description,
            parameters,
            self._handle,
            timeout=None,
            max_output_chars=TOOL_OUTPUT_LIMIT,
        )

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        return dict(arguments)

    def observe(self, episode: EpisodeT, arguments: dict[str, Any]) -> tuple[str, bool]:
        """Run the call on ``episode``: (the observation, whether it is an error)."""
        raise NotImplementedError

    async def _handle(self, values: dict[str, Any], ctx: RunContext[Any]) -> str:
        episode = ctx.deps
        if not isinstance(episode, self.episode_type):
            wanted = self.episode_type.__name__
            raise ToolError(f"{self.name} needs {wanted} deps, got {type(episode).__name__}")
        observation, failed = self.observe(episode, values)
        if failed:
            # Same text for the model; the step is recorded with an error status.
            raise ToolError(observation.removeprefix(ERROR_PREFIX))
        return observation
