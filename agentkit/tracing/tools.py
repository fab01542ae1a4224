"""``InstrumentedTool``: a ``Tool`` whose every call is an ``execute_tool`` span."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from agentkit.tool import RunContext, Tool, ToolOutcome

from . import attributes as a


class InstrumentedTool(Tool):
    """The same tool (name, schema, validation, timeout, limits) with a span per call.

    ``capture_content`` adds the arguments and the output the model saw
    (``gen_ai.tool.call.arguments`` / ``gen_ai.tool.call.result``); off by default, since they
    may hold user data.
    """

    def __init__(self, tool: Tool, tracer: Tracer, *, capture_content: bool = False) -> None:
        # Copy the tool's whole state rather than re-running the constructor, so attributes that
        # later versions of Tool add (and the loop reads) come along unchanged.
        self.__dict__.update(tool.__dict__)
        self.wrapped = tool
        self.tracer = tracer
        self.capture_content = capture_content

    async def call(self, arguments: Mapping[str, Any], ctx: RunContext[Any]) -> ToolOutcome:
        attributes: dict[str, Any] = {
            a.OPERATION_NAME: a.EXECUTE_TOOL,
            a.TOOL_NAME: self.name,
            a.TOOL_TYPE: "function",
            a.TURN: ctx.turn,
        }
        if ctx.call_id:
            attributes[a.TOOL_CALL_ID] = ctx.call_id
        if self.description:
            attributes[a.TOOL_DESCRIPTION] = self.description[:1000]
        if ctx.run_id:
            attributes[a.CONVERSATION_ID] = ctx.run_id
        if self.capture_content:
            attributes[a.TOOL_CALL_ARGUMENTS] = json.dumps(
                dict(arguments), ensure_ascii=False, default=str
            )
        with self.tracer.start_as_current_span(
            f"{a.EXECUTE_TOOL} {self.name}", kind=SpanKind.INTERNAL, attributes=attributes
        ) as span:
            outcome = await self.wrapped.call(arguments, ctx)
            span.set_attribute(a.TOOL_STATUS, outcome.status.value)
            if self.capture_content:
                span.set_attribute(a.TOOL_CALL_RESULT, outcome.output)
            if not outcome.ok:
                span.set_attribute(a.ERROR_TYPE, outcome.error_type or outcome.status.value)
                span.set_status(Status(StatusCode.ERROR, outcome.error or outcome.status.value))
            return outcome
