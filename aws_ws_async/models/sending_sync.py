"""The sync bulk run: pages read in the caller's thread, fanned out on the portal loop.

Each gateway's pages are read *in the caller's thread* (so inside ``transaction.atomic()`` the
caller's own uncommitted rows are seen) and handed to the portal loop (:mod:`aws_ws_async.sync`)
as fan-outs, up to :data:`SYNC_WINDOW` pages per gateway in flight under one shared limiter;
when a page is done its rows are marked here and that gateway's next page is read, so a slow
gateway holds back only itself. Only ids and bytes cross threads.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from django.db import models

from aws_ws_async import sync, telemetry
from aws_ws_async.delivery import AdaptiveLimiter, DeliveryReport
from aws_ws_async.exceptions import BroadcastAborted, BroadcastTimeout
from aws_ws_async.models.broadcast import FanOut
from aws_ws_async.models.endpoints import Endpoints
from aws_ws_async.models.gateways import ApiGateway
from aws_ws_async.models.marks import mark_ids
from aws_ws_async.models.operations import BulkCall
from aws_ws_async.models.paging import pages
from aws_ws_async.models.sending_report import deadline_of, log_aborted, log_finished
from aws_ws_async.signals import broadcast_finished

#: Pages per gateway a sync broadcast has on the portal at once (the next is read meanwhile).
SYNC_WINDOW = 2


class _SyncRun:
    """One sync broadcast: each gateway's pages read here, up to ``SYNC_WINDOW`` in flight.

    As on the async side every gateway has its own keyset stream, so a slow gateway only holds
    back its own pages: whenever a page is done, the next page *of that gateway* is read and
    submitted, while the other gateways go on.
    """

    def __init__(self, queryset: models.QuerySet[Any], call: BulkCall) -> None:
        self.queryset, self.call = queryset, call
        self.db, self.model = queryset.db, queryset.model
        self.deadline = deadline_of(call.timeout)
        self.endpoints: Endpoints = {None: None}
        self.report = DeliveryReport(concurrency=call.policy.max_concurrency)
        self.stop: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.in_flight: dict[concurrent.futures.Future[DeliveryReport], int | None] = {}
        self.streams: dict[int | None, Iterator[list[tuple[Any, ...]]]] = {}
        self.limiter = AdaptiveLimiter(call.policy.max_concurrency)
        self.trace = telemetry.start_operation(call.op.name)

    def feed(self, gateway_id: int | None) -> None:
        """Read the gateway's next page (if any) and hand it to the portal."""
        began = time.perf_counter()
        page = next(self.streams[gateway_id], None)
        if page is None:
            return
        self.trace.page(began, len(page), gateway_id)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise BroadcastTimeout(
                f"{self.call.op.name} did not finish within its timeout", self.report
            )
        fan = FanOut(
            self.call.op,
            {gateway_id: [connection_id for _, connection_id in page]},
            self.endpoints,
            self.call.policy,
            self.limiter,
            deadline=self.deadline,
            stop=self.stop,
        )
        self.in_flight[sync.submit(self.trace.bind(fan.run))] = gateway_id

    def settle(self, future: concurrent.futures.Future[DeliveryReport]) -> None:
        """Wait for one page, mark its rows here, fold it into the report."""
        self.in_flight.pop(future, None)
        try:
            part = future.result()
        except BroadcastAborted as exc:
            self._apply(exc.report)
            raise
        self._apply(part)
        if self.call.progress is not None:
            self.call.progress(self.report)

    def _apply(self, part: DeliveryReport) -> None:
        op = self.call.op
        mark_ids(self.model, self.db, op.to_mark(part), op.reason, op.mark_grace)
        self.report.merge(part)

    def run(self) -> DeliveryReport:
        base = self.queryset.filter(connected=True)
        try:
            gateway_ids = list(base.order_by().values_list("api_gateway_id", flat=True).distinct())
            self.endpoints = ApiGateway.objects.using(self.db).endpoints(gateway_ids)
            for g in gateway_ids:
                rows = base.filter(api_gateway_id=g)
                self.streams[g] = pages(rows, ("connection_id",), self.call.chunk)
                for _ in range(SYNC_WINDOW):
                    self.feed(g)
            while self.in_flight:
                done, _ = concurrent.futures.wait(
                    list(self.in_flight), return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    gateway_id = self.in_flight[future]
                    self.settle(future)
                    self.feed(gateway_id)
        except BaseException as exc:
            error = self._abort(exc)
            if error is exc:
                raise
            raise error from _cause(exc)
        return self.report

    def _abort(self, exc: BaseException) -> BaseException:
        """Stop the pages still in flight, wait for them, keep their marks; the error to raise."""
        if not self.stop.done():
            self.stop.set_result(None)
        for future in list(self.in_flight):
            with contextlib.suppress(BroadcastAborted):  # its report is folded in already
                self.settle(future)
        if not isinstance(exc, Exception):
            return exc
        name = self.call.op.name
        if isinstance(exc, BroadcastTimeout):
            return BroadcastTimeout(f"{name} did not finish within its timeout", self.report)
        return BroadcastAborted(f"{name} stopped: {_cause(exc)!r}", self.report)


def _cause(exc: BaseException) -> BaseException:
    return exc.__cause__ if isinstance(exc, BroadcastAborted) and exc.__cause__ else exc


def run_bulk(queryset: models.QuerySet[Any], call: BulkCall) -> DeliveryReport:
    """Sync twin of :func:`arun_bulk` (queries and marks in the caller's thread)."""
    sync.check_not_on_loop()
    started = time.perf_counter()
    bulk = _SyncRun(queryset, call)
    try:
        report = bulk.run()
    except BroadcastAborted as exc:
        log_aborted(exc, started, call.op, queryset.model, len(bulk.streams), bulk.trace)
        raise
    except BaseException as exc:
        bulk.trace.end(error=type(exc).__name__)
        raise
    log_finished(report, started, call.op, queryset.model, len(bulk.streams), bulk.trace)
    broadcast_finished.send(
        sender=queryset.model, report=report, operation=call.op.signal, queryset=queryset
    )
    return report
