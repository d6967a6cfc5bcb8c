"""OpenTelemetry spans for Podium, one trace per request across every process it touches.

Off unless the standard OpenTelemetry variables configure it (any ``OTEL_*`` variable the user sets),
and then cheap to skip: with tracing off every helper here returns at once and the OpenTelemetry SDK is
never imported. Exporters come from ``OTEL_TRACES_EXPORTER`` (``console``, ``otlp`` when its package is
installed, ``none``); ``PODIUM_OTEL_FILE`` also writes every span as one JSON line to a file (``{pid}``
in the path is replaced, so each process can have its own file).

The W3C ``traceparent`` travels with each hop: in the bus envelope, as an HTTP header, and in an MCP
request's ``_meta``; :func:`span` continues the trace it names.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

logger = logging.getLogger(__name__)

_OWN = {"OTEL_INSTRUMENTATION_A2A_SDK_ENABLED"}  # set by the podium CLI itself, not by the user
_state: dict[str, Any] = {"enabled": None, "tracer": None}


def enabled() -> bool:
    """Whether tracing is configured: an ``OTEL_*`` variable set by the user, or ``PODIUM_OTEL_FILE``."""
    if _state["enabled"] is None:
        env = os.environ
        _state["enabled"] = bool(env.get("PODIUM_OTEL_FILE")) or any(
            k.startswith("OTEL_") and k not in _OWN and env[k] and env[k].lower() != "none" for k in env
        )
    return bool(_state["enabled"])


def setup(service: str) -> None:
    """Install a tracer provider for this process (once), named ``OTEL_SERVICE_NAME`` or ``service``."""
    if not enabled() or _state["tracer"] is not None:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    exporters = {e.strip() for e in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()}
    if "console" in exporters:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    if "otlp" in exporters:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            logger.warning(
                "OTEL_TRACES_EXPORTER=otlp: install opentelemetry-exporter-otlp-proto-http to export"
            )
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    path = os.environ.get("PODIUM_OTEL_FILE")
    if path:
        out = open(path.replace("{pid}", str(os.getpid())), "a", buffering=1, encoding="utf-8")
        exporter = ConsoleSpanExporter(out=out, formatter=lambda s: s.to_json(indent=None) + "\n")
        provider.add_span_processor(SimpleSpanProcessor(exporter))  # written at once: processes get killed
    trace.set_tracer_provider(provider)
    _state["tracer"] = trace.get_tracer("podium")


def _tracer() -> Any:
    if _state["tracer"] is None:
        setup(f"podium-{os.getpid()}")
    return _state["tracer"]


@contextmanager
def _span(name: str, parent: str | None, attributes: Mapping[str, Any]) -> Iterator[Any]:
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({"traceparent": parent}) if parent else None
    attrs = {k: v for k, v in attributes.items() if v is not None}
    with _tracer().start_as_current_span(name, context=context, attributes=attrs) as current:
        yield current


def span(name: str, *, parent: str | None = None, **attributes: Any) -> Any:
    """A span around a block (the current span's child, or ``parent``'s when a traceparent is given);
    a no-op context manager when tracing is off."""
    if not enabled():
        return nullcontext()
    return _span(name, parent, attributes)


def traceparent() -> str | None:
    """The current span's W3C traceparent, to send with the next hop (None when tracing is off)."""
    if not enabled():
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def incoming(state: Mapping[str, Any] | None) -> str | None:
    """The traceparent a request arrived with: from the bus envelope or the HTTP headers."""
    if not state or not enabled():
        return None
    value = state.get("traceparent")
    if value:
        return str(value)
    headers = state.get("headers") or {}
    return headers.get("traceparent") if isinstance(headers, Mapping) else None


def event(name: str, **attributes: Any) -> None:
    """Add an event (a retry, a breaker change) to the current span."""
    if not enabled():
        return
    from opentelemetry import trace

    trace.get_current_span().add_event(name, {k: v for k, v in attributes.items() if v is not None})


def traced_executor(executor: Any, agent: str) -> Any:
    """``executor`` with each ``execute`` in a span that continues the caller's trace; the executor
    itself when tracing is off."""
    if not enabled():
        return executor
    from a2a.server.agent_execution import AgentExecutor

    class Traced(AgentExecutor):
        def __init__(self) -> None:
            self.inner = executor

        async def execute(self, context: Any, event_queue: Any) -> None:
            parent = incoming(context.call_context.state if context.call_context else None)
            with span(
                f"{agent} execute", parent=parent, **{"a2a.agent": agent, "a2a.task_id": context.task_id}
            ):
                await executor.execute(context, event_queue)

        async def cancel(self, context: Any, event_queue: Any) -> None:
            await executor.cancel(context, event_queue)

        def __getattr__(self, name: str) -> Any:  # the runtime's optional hooks (serve, routes, aclose)
            return getattr(executor, name)

    return Traced()


def traced_tools(server: Any, name: str) -> Any:
    """``server`` (an MCPServer) with every tool call in a span that continues the caller's trace, taken
    from the request's ``_meta.traceparent``; unchanged when tracing is off."""
    if not enabled():
        return server
    call_tool = server.call_tool

    async def traced(tool: str, arguments: dict[str, Any], context: Any = None) -> Any:
        meta: Any = None
        try:
            meta = context.request_context.meta if context is not None else None
        except (AttributeError, ValueError):  # called outside a request (in-process tests)
            meta = None
        parent = meta.get("traceparent") if isinstance(meta, Mapping) else None
        with span(f"mcp {name}.{tool}", parent=parent, **{"mcp.server": name, "mcp.tool": tool}):
            return await call_tool(tool, arguments, context)

    server.call_tool = traced
    return server
