"""OpenTelemetry spans (extra ``[otel]``: the API only; the project installs and configures an SDK).

One span per finished operation (broadcast, bulk close, single send), made when the report is
final, with its start time set back to when the operation began, so it nests under whatever span
was current in the caller (the request span of ``opentelemetry-instrumentation-django`` or
``-asgi``, or a worker's span). We never start spans for HTTP posts ourselves: with
``opentelemetry-instrumentation-botocore`` installed, each post is already a client span, so a
span of ours per post would duplicate it. Without ``opentelemetry-api`` everything here is a no-op.
"""

from __future__ import annotations

import time
from typing import Any

_UNSET: Any = object()
_trace: Any = _UNSET
_provider: Any = None

#: Attribute prefix of every attribute we set.
PREFIX = "aws_ws_async."


def _api() -> Any:
    """The ``opentelemetry.trace`` module, or None when the API is not installed (cached)."""
    global _trace
    if _trace is _UNSET:
        try:
            from opentelemetry import trace as api
        except ImportError:
            _trace = None
        else:
            _trace = api
    return _trace


def use_tracer_provider(provider: Any) -> None:
    """Make spans with ``provider`` instead of the global one (None: back to the global)."""
    global _provider
    _provider = provider


def _tracer() -> Any:
    trace = _api()
    if trace is None:
        return None
    return trace.get_tracer("aws_ws_async", tracer_provider=_provider)


def operation_span(name: str, fields: dict[str, Any], started: float, *, error: str = "") -> None:
    """Record one finished operation as a span that began ``time.perf_counter() - started`` ago."""
    tracer = _tracer()
    if tracer is None:
        return
    end_ns = time.time_ns()
    start_ns = end_ns - int((time.perf_counter() - started) * 1e9)
    attributes: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            for reason, count in value.items():
                attributes[f"{PREFIX}{key[3:]}.{reason}"] = count
        else:
            attributes[PREFIX + key[3:]] = value
    span = tracer.start_span(f"aws_ws_async.{name}", start_time=start_ns, attributes=attributes)
    if error:
        trace = _api()
        span.set_status(trace.Status(trace.StatusCode.ERROR, error))
    span.end(end_time=end_ns)


def annotate_request(**attributes: str) -> None:
    """Add ``aws_ws_async.*`` attributes to the active span (the request's), if it records."""
    trace = _api()
    if trace is None:
        return
    span = trace.get_current_span()
    if span.is_recording():
        for key, value in attributes.items():
            span.set_attribute(PREFIX + key, value)
