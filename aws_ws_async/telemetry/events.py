"""The structured fields of a report, for log ``extra``, span attributes and the dashboard.

Counts and timings only: never a payload, a token or a connection id list.
"""

from __future__ import annotations

from typing import Any, Protocol


class ReportLike(Protocol):
    """What we read of a :class:`~aws_ws_async.delivery.DeliveryReport`."""

    delivered_count: int
    gone: list[str]
    failed: list[Any]
    retries: int
    throttled: int
    duration: float
    concurrency: int
    lowest_concurrency: int


def failure_reasons(report: ReportLike) -> dict[str, int]:
    """Failed recipients counted by ``Failure.reason``."""
    reasons: dict[str, int] = {}
    for failure in report.failed:
        reasons[str(failure.reason)] = reasons.get(str(failure.reason), 0) + 1
    return reasons


def report_fields(report: ReportLike, operation: str, gateways: int) -> dict[str, Any]:
    """Flat, JSON-friendly fields of one finished operation (prefixed ``ws_`` in log records,
    since ``LogRecord`` reserves names such as ``args`` and ``msg``)."""
    delivered, gone, failed = report.delivered_count, len(report.gone), len(report.failed)
    return {
        "ws_operation": operation,
        "ws_recipients": delivered + gone + failed,
        "ws_delivered": delivered,
        "ws_gone": gone,
        "ws_failed": failed,
        "ws_failed_reasons": failure_reasons(report),
        "ws_retries": report.retries,
        "ws_throttled": report.throttled,
        "ws_concurrency": report.concurrency,
        "ws_lowest_concurrency": report.lowest_concurrency,
        "ws_gateways": gateways,
        "ws_duration": round(report.duration, 6),
    }
