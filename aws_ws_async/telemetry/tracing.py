"""OpenTelemetry spans (extra ``[otel]``: the API only; the project installs and configures an SDK).

One span per finished operation (broadcast, bulk close, single send), made when the report is
final, with its start time set back to when the operation began, so it nests under whatever span
was current in the caller (the request span of ``opentelemetry-instrumentation-django`` or
``-asgi``, or a worker's span). We never start spans for HTTP posts ourselves: with
``opentelemetry-instrumentation-botocore`` installed, each post is already a client span, so a
span of ours per post would duplicate it. Without ``opentelemetry-api`` everything here is a no-op.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

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


_cached: tuple[Any, Any] | None = None


def use_tracer_provider(provider: Any) -> None:
    """Make spans with ``provider`` instead of the global one (None: back to the global)."""
    global _provider
    _provider = provider


def _tracer() -> Any:
    """Our tracer, cached per provider (``get_tracer`` costs tens of microseconds).

    With the global provider the cached tracer is the API's proxy, which follows a provider
    set later with ``trace.set_tracer_provider``.
    """
    global _cached
    trace = _api()
    if trace is None:
        return None
    cached = _cached
    if cached is not None and cached[0] is _provider:
        return cached[1]
    tracer = trace.get_tracer("aws_ws_async", tracer_provider=_provider)
    _cached = (_provider, tracer)
    return tracer


def tracer() -> Any:
    """Our tracer (None without the API); see :func:`_tracer`."""
    return _tracer()


def recording_context() -> Any:
    """A context holding the current span if it records (a parent for sampled children), else
    None: without the API, outside any span, or under the API's no-op provider."""
    trace = _api()
    if trace is None:
        return None
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    return trace.set_span_in_context(span)


def bind(context: Any, factory: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
    """``factory`` made to run with ``context`` attached (None: ``factory`` itself).

    Work handed to the portal (:mod:`aws_ws_async.sync`) starts in an empty context on purpose;
    this carries only the OpenTelemetry context over, inside the portal's own task, so spans
    made there (the engine's sampled post spans) have the operation's span as parent.
    """
    if context is None:
        return factory
    from opentelemetry import context as otel_context

    async def bound() -> T:
        token = otel_context.attach(context)
        try:
            return await factory()
        finally:
            otel_context.detach(token)

    return bound


def operation_span(name: str, fields: dict[str, Any], started: float, *, error: str = "") -> None:
    """Record one finished operation as a span that began ``time.perf_counter() - started`` ago."""
    tracer = _tracer()
    if tracer is None:
        return
    end_ns = time.time_ns()
    start_ns = end_ns - int((time.perf_counter() - started) * 1e9)
    attributes = _attributes(fields, compact=name.startswith("session_"))
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


#: Left off a single session's send or close span: always 1 for one connection, or already
#: the span's name (operation) and its own start and end (duration).
_IMPLIED_FOR_ONE = frozenset(
    (
        "ws_recipients",
        "ws_concurrency",
        "ws_lowest_concurrency",
        "ws_gateways",
        "ws_operation",
        "ws_duration",
    )
)


def _attributes(fields: dict[str, Any], *, compact: bool = False) -> dict[str, Any]:
    """Span attributes of report fields. ``compact`` (a single send or close): without the
    fields its name, its times or the single connection imply, and without zero counts (the
    SDK pays about 1-2 us per attribute, and a chat sends one message at a time)."""
    attributes: dict[str, Any] = {}
    for key, value in fields.items():
        if compact and (key in _IMPLIED_FOR_ONE or not value):
            continue
        if isinstance(value, dict):
            for reason, count in value.items():
                attributes[f"{PREFIX}{key[3:]}.{reason}"] = count
        else:
            attributes[PREFIX + key[3:]] = value
    return attributes


class OperationTrace:
    """A bulk operation's span, started when the operation starts (so it can have children).

    Its children are the database pages (``aws_ws_async.db_page``, with the rows read and the
    gateway). While :meth:`active` is entered the span is current, so the posts' client spans of
    ``opentelemetry-instrumentation-botocore``/``-aiohttp-client`` nest under it. Without the
    API, or with the API's no-op provider, every method does nothing.
    """

    __slots__ = ("_context", "_span", "_tracer")

    def __init__(self, name: str) -> None:
        self._tracer = _tracer()
        self._span: Any = None
        self._context: Any = None
        if self._tracer is not None:
            span = self._tracer.start_span(f"aws_ws_async.{name}")
            if span.is_recording():
                self._span = span
                self._context = _api().set_span_in_context(span)

    def active(self) -> Any:
        """Context manager making the span current (nothing without a recording span)."""
        if self._span is None:
            return contextlib.nullcontext()
        return _api().use_span(self._span, end_on_exit=False)

    def bind(self, factory: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        """``factory`` run with this span current (for work handed to the portal)."""
        return bind(self._context, factory)

    def page(self, began: float, rows: int, gateway_id: int | None) -> None:
        """A page of ``rows`` read since ``began`` (``time.perf_counter()``): one child span."""
        if self._context is None:
            return
        end_ns = time.time_ns()
        start_ns = end_ns - int((time.perf_counter() - began) * 1e9)
        attributes = {PREFIX + "rows": rows, PREFIX + "gateway_id": gateway_id or 0}
        child = self._tracer.start_span(
            "aws_ws_async.db_page",
            context=self._context,
            start_time=start_ns,
            attributes=attributes,
        )
        child.end(end_time=end_ns)

    def end(self, fields: dict[str, Any] | None = None, *, error: str = "") -> None:
        """Set the report's attributes (if any) and end the span (once)."""
        span, self._span, self._context = self._span, None, None
        if span is None:
            return
        if fields:
            span.set_attributes(_attributes(fields))
        if error:
            trace = _api()
            span.set_status(trace.Status(trace.StatusCode.ERROR, error))
        span.end()
