"""``instrument(agent)``: the same agent with a span per run, per model call and per tool call.

The run span (``invoke_agent``) is the current span while the run goes, so the model spans and
tool spans of that run are its children: OpenTelemetry keeps the current span in a contextvar,
and anyio's tasks (parallel tool calls, ``stream``'s background task) start with a copy of the
context of the task that started them. Several runs at once each get their own tree.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, TracerProvider

from agentkit.agent import Agent
from agentkit.messages import Message
from agentkit.result import RunResult
from agentkit.trajectory.recorder import Recorder

from . import attributes as a
from .model import InstrumentedModel
from .tools import InstrumentedTool

DepsT = TypeVar("DepsT")
OutputT = TypeVar("OutputT")

TRACER_NAME = "agentkit"


def get_tracer(tracer_provider: TracerProvider | None = None) -> Tracer:
    from agentkit import __version__

    provider = tracer_provider or trace.get_tracer_provider()
    return provider.get_tracer(TRACER_NAME, __version__)


class InstrumentedAgent(Agent[DepsT, OutputT], Generic[DepsT, OutputT]):
    """An agent sharing another's configuration, with instrumented model and tools.

    Built by :func:`instrument`; the original agent is left as it was.
    """

    def __init__(
        self,
        agent: Agent[DepsT, OutputT],
        tracer: Tracer,
        *,
        capture_content: bool = False,
        provider: str = "sglang",
    ) -> None:
        # Share the configured state rather than re-running the constructor (which would add
        # the final_result tool a second time).
        self.__dict__.update(agent.__dict__)
        self.tracer = tracer
        self.capture_content = capture_content
        self.original = agent
        self.instrumented_model = InstrumentedModel(agent.model, tracer, provider=provider)
        self.model = self.instrumented_model
        self.tools = [
            t
            if isinstance(t, InstrumentedTool)
            else InstrumentedTool(t, tracer, capture_content=capture_content)
            for t in agent.tools
        ]
        self.tools_by_name = {t.name: t for t in self.tools}

    async def run(
        self,
        prompt: str,
        *,
        deps: DepsT = None,  # type: ignore[assignment]
        thinking: bool | None = None,
        recorder: Recorder | None = None,
        message_history: list[Message] | None = None,
        event_handler: Any = None,
        **episode: Any,
    ) -> RunResult[OutputT]:
        attributes: dict[str, Any] = {
            a.OPERATION_NAME: a.INVOKE_AGENT,
            a.AGENT_NAME: self.name,
            a.PROVIDER_NAME: self.instrumented_model.provider,
            a.REQUEST_MODEL: self.model.name,
            a.MODE: self.model.mode,
            a.OUTPUT_TYPE: "json" if self.output_type is not None else "text",
        }
        for key, name in (("task_id", a.TASK_ID), ("group_id", a.GROUP_ID)):
            if episode.get(key) is not None:
                attributes[name] = str(episode[key])
        with self.tracer.start_as_current_span(
            f"{a.INVOKE_AGENT} {self.name}",
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        ) as span:
            result = await super().run(
                prompt,
                deps=deps,
                thinking=thinking,
                recorder=recorder,
                message_history=message_history,
                event_handler=event_handler,
                **episode,
            )
            span.set_attributes(
                {
                    a.CONVERSATION_ID: result.episode_id,
                    a.RUN_STATUS: result.status.value,
                    a.RUN_TURNS: result.turns,
                    a.RUN_TOOL_CALLS: result.usage.tool_calls,
                    a.USAGE_INPUT_TOKENS: result.usage.prompt_tokens,
                    a.USAGE_OUTPUT_TOKENS: result.usage.completion_tokens,
                }
            )
            if not result.ok:
                span.set_attribute(a.ERROR_TYPE, result.status.value)
                span.set_status(Status(StatusCode.ERROR, result.error or result.status.value))
            return result


def instrument(
    agent: Agent[DepsT, OutputT],
    *,
    tracer_provider: TracerProvider | None = None,
    capture_content: bool = False,
    provider: str = "sglang",
) -> InstrumentedAgent[DepsT, OutputT]:
    """The agent, traced: an ``invoke_agent`` span per ``run``/``stream``, a ``chat`` (or
    ``text_completion``) span per model call and an ``execute_tool`` span per tool call.

    ``tracer_provider`` defaults to the global one (``opentelemetry.trace``); with the API's
    default no-op provider every span is a no-op. Closing either agent closes the shared model.
    """
    return InstrumentedAgent(
        agent, get_tracer(tracer_provider), capture_content=capture_content, provider=provider
    )
