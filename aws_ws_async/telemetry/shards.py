"""Telemetry of an enqueued broadcast's shard (:mod:`aws_ws_async.scaleout` calls it).

A shard attempt runs in a task worker, page by page, and may stop anywhere (lease lost, crash),
so it is not one final report: :class:`ShardTrace` counts each page's report when it is done
(the counters are right even if the worker dies later), makes one ``db_page`` child span per
page, and ends one span ``aws_ws_async.broadcast_shard`` with the summed counts (status ERROR if
it stopped). Its duration goes to the operation histogram once per attempt. Shards are not kept
for the dashboard in memory: their persisted ``Broadcast`` row is the dashboard's record.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aws_ws_async.telemetry import tracing
from aws_ws_async.telemetry.events import ReportLike, report_fields
from aws_ws_async.telemetry.metrics import get_metrics

T = TypeVar("T")

OPERATION = "broadcast_shard"
_SUMMED = ("ws_recipients", "ws_delivered", "ws_gone", "ws_failed", "ws_retries", "ws_throttled")


class ShardTrace:
    """One attempt of one shard: started by :func:`start_shard`, fed per page, ended once."""

    def __init__(self, broadcast_id: int, shard_id: int, attempt: int, db: str = "") -> None:
        self._started = time.perf_counter()
        self._trace = tracing.OperationTrace(OPERATION)
        self._final: dict[str, Any] | None = None
        self._totals: Counter[str] = Counter()
        self._reasons: Counter[str] = Counter()
        self._gateways: set[Any] = set()
        self._concurrency = self._lowest = 0
        self._ids: dict[str, int | str] = {
            "ws_broadcast_id": broadcast_id,
            "ws_shard_id": shard_id,
            "ws_attempt": attempt,
        }
        if db:
            self._ids["ws_db"] = db

    def bind(self, factory: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        """``factory`` run with the shard's span current (hand this to ``sync.submit``)."""
        return self._trace.bind(factory)

    def active(self) -> Any:
        """Context manager making the shard's span current (in the worker's own thread)."""
        return self._trace.active()

    def page(
        self,
        began: float | None,
        rows: int,
        report: ReportLike | None,
        gateway_id: int | None = None,
    ) -> None:
        """A page of ``rows`` read since ``began`` (``perf_counter``; None: no span) was posted
        with ``report`` (None: nothing was counted, e.g. the lease was lost mid-page)."""
        if began is not None:
            self._trace.page(began, rows, gateway_id)
        if gateway_id is not None:
            self._gateways.add(gateway_id)
        if report is None:
            return
        fields = report_fields(report, OPERATION, 1)
        metrics = get_metrics()
        if metrics is not None:
            metrics.count(fields)
        for key in _SUMMED:
            self._totals[key] += fields[key]
        self._reasons.update(fields["ws_failed_reasons"])
        self._concurrency = max(self._concurrency, fields["ws_concurrency"])
        lowest = fields["ws_lowest_concurrency"]
        self._lowest = lowest if not self._lowest else min(self._lowest, lowest)

    def posted(self, report: ReportLike | None, gateway_id: int | None = None) -> None:
        """A page's posts are done with ``report`` (None: not counted); no span (the page's
        read already had one from :meth:`page` with ``report=None``)."""
        self.page(None, 0, report, gateway_id)

    def fields(self) -> dict[str, Any]:
        """The flat ``ws_*`` fields so far (the same keys as a broadcast's summary record)."""
        return {
            "ws_operation": OPERATION,
            **{key: self._totals[key] for key in _SUMMED},
            "ws_failed_reasons": dict(self._reasons),
            "ws_concurrency": self._concurrency,
            "ws_lowest_concurrency": self._lowest,
            "ws_gateways": len(self._gateways),
            "ws_duration": round(time.perf_counter() - self._started, 6),
            **self._ids,
        }

    def end(self, *, error: str = "") -> dict[str, Any]:
        """End the span (status ERROR with ``error``) and observe the duration, once; the
        final fields (a second call returns them again and records nothing)."""
        if self._final is not None:
            return self._final
        fields = self._final = self.fields()
        self._trace.end(fields, error=error)
        metrics = get_metrics()
        if metrics is not None:
            metrics.child(metrics.duration, OPERATION).observe(fields["ws_duration"])
        return fields


def start_shard(broadcast_id: int, shard_id: int, *, attempt: int = 1, db: str = "") -> ShardTrace:
    """Start the telemetry of one shard attempt (see :class:`ShardTrace`)."""
    return ShardTrace(broadcast_id, shard_id, attempt, db)
