"""The async bulk run: each gateway's connected rows streamed by keyset pages, one engine each.

Gone rows are marked in background batches while the engines run (:class:`.broadcast.Marker`);
every query and mark uses the queryset's database. Entry point of ``qs.asend_message`` and
``qs.adisconnect`` (through :mod:`.sending`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from django.db import models

from aws_ws_async import telemetry
from aws_ws_async.delivery import DeliveryReport
from aws_ws_async.exceptions import BroadcastAborted
from aws_ws_async.models.broadcast import FanOut, Marker
from aws_ws_async.models.gateways import ApiGateway
from aws_ws_async.models.marks import amark_ids
from aws_ws_async.models.operations import BulkCall
from aws_ws_async.models.paging import apages
from aws_ws_async.models.sending_report import deadline_of, log_aborted, log_finished
from aws_ws_async.signals import broadcast_finished


async def arun_bulk(queryset: models.QuerySet[Any], call: BulkCall) -> DeliveryReport:
    """Run ``call`` over every connected row of ``queryset``; log and signal the report."""
    started = time.perf_counter()
    op, db, model = call.op, queryset.db, queryset.model
    trace = telemetry.start_operation(op.name)
    deadline = deadline_of(call.timeout)
    base = queryset.filter(connected=True)
    gateway_ids = [
        g async for g in base.order_by().values_list("api_gateway_id", flat=True).distinct()
    ]
    endpoints = await ApiGateway.objects.using(db).aendpoints(gateway_ids)
    marker = Marker(partial(amark_ids, model, db, reason=op.reason, grace=op.mark_grace))
    fan: FanOut | None = None

    def page_read() -> None:
        if call.progress is not None and fan is not None:
            call.progress(fan.snapshot())

    async def stream(gateway_id: int | None) -> AsyncIterator[str]:
        rows = base.filter(api_gateway_id=gateway_id)
        began = time.perf_counter()
        async for page in apages(rows, ("connection_id",), call.chunk):
            trace.page(began, len(page), gateway_id)
            for _, connection_id in page:
                yield connection_id
            page_read()
            began = time.perf_counter()

    groups = {g: stream(g) for g in gateway_ids}
    fan = FanOut(op, groups, endpoints, call.policy, marker=marker, deadline=deadline)
    try:
        with trace.active():
            report = await fan.run()
    except BroadcastAborted as exc:
        await marker.aclose()
        log_aborted(exc, started, op, model, len(gateway_ids), trace)
        raise
    except BaseException as exc:
        trace.end(error=type(exc).__name__)
        await marker.aclose()
        raise
    await marker.aclose()
    log_finished(report, started, op, model, len(gateway_ids), trace)
    await broadcast_finished.asend(
        sender=model, report=report, operation=op.signal, queryset=queryset
    )
    return report
