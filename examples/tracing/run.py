"""Trace an agent with OpenTelemetry: spans printed to the console, or sent over OTLP.

python examples/tracing/run.py                                   # scripted GLM-4.5, console
python examples/tracing/run.py --otlp http://127.0.0.1:4318/v1/traces   # to a collector
python examples/tracing/run.py --model-url URL                   # GLM-4.5 on SGLang
"""

from __future__ import annotations

import argparse
import contextlib

import anyio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from agentkit import Agent, tool
from agentkit.dialects.glm45 import format_assistant
from agentkit.models import SGLangChat
from agentkit.testing import SGLangTestServer
from agentkit.tracing import instrument, otlp_tracer_provider


@tool
def stock(item: str) -> int:
    """How many of an item are in stock.

    Args:
        item: The item's name.
    """
    return {"apples": 12, "pears": 0}.get(item, 0)


SCRIPT = [
    format_assistant(
        "Check both.", "", [("stock", {"item": "apples"}), ("stock", {"item": "pears"})]
    ),
    format_assistant("Done.", "12 apples, no pears.", []),
]


async def main(model_url: str | None, otlp: str | None) -> None:
    if otlp:
        provider = otlp_tracer_provider(otlp, service_name="agentkit-example")
    else:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    async with contextlib.AsyncExitStack() as stack:
        url = model_url
        if url is None:
            url = (await stack.enter_async_context(SGLangTestServer(policy=SCRIPT))).base_url
        agent: Agent[None, str] = Agent(model=SGLangChat(url), tools=[stock])
        traced = instrument(agent, tracer_provider=provider)
        async with traced:
            result = await traced.run("How many apples and pears are in stock?")
        print(f"{result.status.value}: {result.text}")
    await anyio.to_thread.run_sync(provider.shutdown)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-url", default=None)
    parser.add_argument("--otlp", default=None, help="OTLP/HTTP traces URL")
    args = parser.parse_args()
    anyio.run(main, args.model_url, args.otlp)
