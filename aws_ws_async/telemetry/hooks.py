"""The calls the rest of the package makes: one per finished operation, one per refusal."""

from __future__ import annotations

from typing import Any

from aws_ws_async.telemetry import recent, tracing
from aws_ws_async.telemetry.events import ReportLike, report_fields
from aws_ws_async.telemetry.metrics import get_metrics


def delivery_finished(
    report: ReportLike,
    operation: str,
    *,
    started: float,
    gateways: int,
    error: str = "",
    trace: tracing.OperationTrace | None = None,
) -> dict[str, Any]:
    """Span, metrics and dashboard entry of one finished operation; returns its log fields.

    ``started`` is the ``time.perf_counter()`` value when the operation began; ``error`` names
    why it stopped early (the span's status is then ERROR). ``trace`` is the operation's span
    if it was started up front (:func:`start_operation`); else one is made now, backdated.
    """
    fields = report_fields(report, operation, gateways)
    if trace is not None:
        trace.end(fields, error=error)
    else:
        tracing.operation_span(operation, fields, started, error=error)
    metrics = get_metrics()
    if metrics is not None:
        metrics.record(fields)
    recent.add_report(fields)
    return fields


def refusal(route: str, reason: str) -> None:
    """A view refused a request: count it and name it on the request's span."""
    metrics = get_metrics()
    if metrics is not None:
        metrics.child(metrics.refusals, route or "-", reason).inc()
    tracing.annotate_request(route=route or "-", reason=reason)
    recent.add_refusal(route or "-", reason)


def start_operation(operation: str) -> tracing.OperationTrace:
    """Start a bulk operation's span (ended by :func:`delivery_finished` with ``trace=``)."""
    return tracing.OperationTrace(operation)
