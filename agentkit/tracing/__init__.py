"""OpenTelemetry tracing for agentkit runs (``pip install 'agentkit[otel]'``), opt-in.

    from agentkit.tracing import instrument, otlp_tracer_provider

    provider = otlp_tracer_provider("http://127.0.0.1:4318/v1/traces")
    traced = instrument(agent, tracer_provider=provider)
    result = await traced.run("...")      # invoke_agent > chat / execute_tool spans

Nothing here is imported by agentkit itself: an agent that is not instrumented runs no tracing
code at all. Span and attribute names follow the OpenTelemetry GenAI semantic conventions
(see ``attributes.py`` and ``docs/tracing.md``).
"""

from __future__ import annotations

try:  # checked once here, so that every submodule says what to install
    import opentelemetry.trace  # noqa: F401
except ImportError as exc:  # depends on the install
    raise ImportError("agentkit.tracing needs OpenTelemetry: pip install 'agentkit[otel]'") from exc

from .agent import InstrumentedAgent, get_tracer, instrument
from .model import InstrumentedModel, InstrumentedSession
from .tools import InstrumentedTool

__all__ = [
    "InstrumentedAgent",
    "InstrumentedModel",
    "InstrumentedSession",
    "InstrumentedTool",
    "get_tracer",
    "instrument",
    "otlp_tracer_provider",
]


def __getattr__(name: str) -> object:
    if name == "otlp_tracer_provider":  # needs the SDK and the exporter, so only on demand
        from .otlp import otlp_tracer_provider

        return otlp_tracer_provider
    raise AttributeError(name)
