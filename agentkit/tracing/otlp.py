"""OTLP export: a tracer provider that sends spans to a collector (``agentkit[otel]``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def otlp_tracer_provider(
    endpoint: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    service_name: str = "agentkit",
    set_global: bool = False,
) -> TracerProvider:
    """A ``TracerProvider`` exporting over OTLP/HTTP (protobuf) in batches.

    ``endpoint`` is the traces URL (``http://127.0.0.1:4318/v1/traces``); left out, the
    exporter reads ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` and
    ``OTEL_EXPORTER_OTLP_HEADERS`` as the OpenTelemetry spec says. Call ``shutdown()`` on it at
    exit to flush what is still queued.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    service = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=dict(headers) if headers else None)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    if set_global:
        from opentelemetry import trace

        trace.set_tracer_provider(provider)
    return provider
