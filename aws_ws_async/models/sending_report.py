"""The end of every send or close: its deadline, and its report timed, logged and counted.

Shared by the async and sync bulk runs and the single-connection twins, so a report is
finished the same way whichever path ran it (logger ``aws_ws_async.sending``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aws_ws_async import telemetry
from aws_ws_async.delivery import DeliveryReport
from aws_ws_async.exceptions import BroadcastAborted
from aws_ws_async.models.operations import Operation

logger = logging.getLogger("aws_ws_async.sending")


def deadline_of(timeout: float | None) -> float | None:
    """Absolute deadline on the monotonic clock (the clock of every asyncio loop)."""
    return None if timeout is None else time.monotonic() + timeout


def log_finished(
    report: DeliveryReport,
    started: float,
    op: Operation,
    model: type[Any],
    gateways: int = 0,
    trace: telemetry.tracing.OperationTrace | None = None,
) -> None:
    """Time a run that reached its end, count it (telemetry) and log its summary at INFO."""
    report.duration = time.perf_counter() - started
    fields = telemetry.delivery_finished(
        report, op.name, started=started, gateways=gateways, trace=trace
    )
    extra = {"model": model.__name__, **fields}
    logger.info("%s finished: %s", op.name, report.summary(), extra=extra)


def log_aborted(
    exc: BroadcastAborted,
    started: float,
    op: Operation,
    model: type[Any],
    gateways: int = 0,
    trace: telemetry.tracing.OperationTrace | None = None,
) -> None:
    """The same for a run stopped early (deadline, database error): its partial report, as a
    WARNING and with the error's class on the telemetry, so a stopped run is never counted
    as a finished one."""
    exc.report.duration = time.perf_counter() - started
    error = type(exc).__name__
    fields = telemetry.delivery_finished(
        exc.report, op.name, started=started, gateways=gateways, error=error, trace=trace
    )
    extra = {"model": model.__name__, **fields}
    logger.warning("%s stopped: %s", op.name, exc.report.summary(), extra=extra)
