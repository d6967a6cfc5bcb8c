"""a2a-sdk's OpenTelemetry wrappers removed from its classes while its tracing is off.

a2a-sdk decorates its request handlers, event queues, dispatchers and client transports with
``trace_class``/``trace_function`` when it is imported. With its tracing off
(``OTEL_INSTRUMENTATION_A2A_SDK_ENABLED=false``, which the ``podium`` CLI sets unless OpenTelemetry is
configured) every wrapper still runs on every call: it asks a no-op tracer for a no-op span through
``__getattr__``, enters it, sets its status and logs two debug lines. A bus ``SendMessage`` makes about
seventy such calls, over a millisecond of CPU on a small machine for spans that go nowhere.

:func:`strip` puts the undecorated functions (``functools.wraps`` keeps each one as ``__wrapped__``) back on
those classes and modules. It does nothing while a2a-sdk's tracing is on, so configured tracing keeps every
span; call it once the a2a-sdk modules an agent uses are imported (``agents.host.handler`` does, as it is
imported) and before their methods are bound (routes bind them when an app is built).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

# Where a2a-sdk 1.3 applies its decorators (modules whose dependencies are missing are skipped).
_MODULES = (
    "a2a.server.request_handlers.default_request_handler_v2",
    "a2a.server.request_handlers.default_request_handler",
    "a2a.server.events.event_queue",
    "a2a.server.events.event_queue_v2",
    "a2a.server.events.event_consumer",
    "a2a.server.events.in_memory_queue_manager",
    "a2a.server.routes.jsonrpc_dispatcher",
    "a2a.server.routes.rest_dispatcher",
    "a2a.server.tasks.task_manager",
    "a2a.client.transports.jsonrpc",
    "a2a.client.transports.rest",
)

_done: set[str] = set()  # modules already unwrapped (or skipped for a missing dependency)


def tracing_on() -> bool:
    """Whether a2a-sdk's own spans are recorded (OpenTelemetry installed and its switch not off)."""
    from a2a.utils import telemetry

    return bool(getattr(telemetry, "otel_installed", False) and getattr(telemetry, "otel_enabled", False))


def is_span_wrapper(value: Any) -> bool:
    """Whether ``value`` is one of a2a-sdk's tracing wrappers around a function."""
    # functools.wraps copies the wrapped function's names onto the wrapper; its code keeps its own
    return (
        inspect.isfunction(value)
        and value.__code__.co_qualname.startswith("trace_function.<locals>.")
        and callable(getattr(value, "__wrapped__", None))
    )


def strip() -> int:
    """Unwrap a2a-sdk's tracing wrappers while its tracing is off; returns how many were removed (0 when
    tracing is on, or when they were removed before)."""
    if tracing_on():
        return 0
    removed = 0
    for name in _MODULES:
        if name in _done:
            continue
        _done.add(name)
        try:
            module = sys.modules.get(name) or importlib.import_module(name)
        except ImportError:  # an optional dependency of that module (grpc, say) is not installed
            continue
        for attr, value in list(vars(module).items()):
            if is_span_wrapper(value):
                setattr(module, attr, value.__wrapped__)
                removed += 1
            elif inspect.isclass(value) and value.__module__ == name:
                for method, function in list(vars(value).items()):
                    if is_span_wrapper(function):
                        setattr(value, method, function.__wrapped__)
                        removed += 1
    return removed
