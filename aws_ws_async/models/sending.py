"""The sending twins' cores: read rows, fan out (:mod:`.broadcast`), mark rows, report.

Each public method on :class:`~aws_ws_async.models.WebSocketSessionQuerySet` and
:class:`~aws_ws_async.models.WebSocketSession` validates its arguments
(:mod:`.operations`) and calls one pair here; the async and sync member of a pair differ only
in their I/O:

* **async**: each gateway's connected rows are streamed by keyset pages (:mod:`.paging`), one
  engine per gateway, gone rows marked in background batches while the engines run.
* **sync**: each gateway's pages are read *in the caller's thread* (so inside
  ``transaction.atomic()`` the caller's own uncommitted rows are seen) and handed to the portal
  loop (:mod:`aws_ws_async.sync`) as fan-outs, up to two pages per gateway in flight under one
  shared limiter; when a page is done its rows are marked here and that gateway's next page is
  read, so a slow gateway holds back only itself. Only ids and bytes cross threads.

Every query and every mark uses the queryset's database (``queryset.db``) or the instance's
(``_state.db``), so ``.using("other")`` sends through ``other``'s gateways.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import models

from aws_ws_async import sync, telemetry
from aws_ws_async.delivery import AdaptiveLimiter, DeliveryPolicy, DeliveryReport
from aws_ws_async.exceptions import BroadcastAborted, BroadcastTimeout
from aws_ws_async.models.broadcast import FanOut, Marker
from aws_ws_async.models.endpoints import Endpoints
from aws_ws_async.models.gateways import ApiGateway
from aws_ws_async.models.marks import amark_ids, mark_ids
from aws_ws_async.models.operations import BulkCall, Operation, delivery_policy
from aws_ws_async.models.paging import apages, pages
from aws_ws_async.signals import broadcast_finished

if TYPE_CHECKING:
    from aws_ws_async.models.sessions import WebSocketSession

logger = logging.getLogger("aws_ws_async.sending")

#: Pages per gateway a sync broadcast has on the portal at once (the next is read meanwhile).
SYNC_WINDOW = 2


def _deadline(timeout: float | None) -> float | None:
    """Absolute deadline on the monotonic clock (the clock of every asyncio loop)."""
    return None if timeout is None else time.monotonic() + timeout


def _finish(
    report: DeliveryReport,
    started: float,
    op: Operation,
    model: type[Any],
    gateways: int = 0,
    trace: telemetry.tracing.OperationTrace | None = None,
) -> None:
    report.duration = time.perf_counter() - started
    fields = telemetry.delivery_finished(
        report, op.name, started=started, gateways=gateways, trace=trace
    )
    extra = {"model": model.__name__, **fields}
    logger.info("%s finished: %s", op.name, report.summary(), extra=extra)


def _aborted(
    exc: BroadcastAborted,
    started: float,
    op: Operation,
    model: type[Any],
    gateways: int = 0,
    trace: telemetry.tracing.OperationTrace | None = None,
) -> None:
    exc.report.duration = time.perf_counter() - started
    error = type(exc).__name__
    fields = telemetry.delivery_finished(
        exc.report, op.name, started=started, gateways=gateways, error=error, trace=trace
    )
    extra = {"model": model.__name__, **fields}
    logger.warning("%s stopped: %s", op.name, exc.report.summary(), extra=extra)


# --- QuerySet level, async: streamed per gateway -------------------------------------------


async def arun_bulk(queryset: models.QuerySet[Any], call: BulkCall) -> DeliveryReport:
    """Run ``call`` over every connected row of ``queryset``; log and signal the report."""
    started = time.perf_counter()
    op, db, model = call.op, queryset.db, queryset.model
    trace = telemetry.start_operation(op.name)
    deadline = _deadline(call.timeout)
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
        _aborted(exc, started, op, model, len(gateway_ids), trace)
        raise
    except BaseException as exc:
        trace.end(error=type(exc).__name__)
        await marker.aclose()
        raise
    await marker.aclose()
    _finish(report, started, op, model, len(gateway_ids), trace)
    await broadcast_finished.asend(
        sender=model, report=report, operation=op.signal, queryset=queryset
    )
    return report


# --- QuerySet level, sync: pages read here, sent on the portal -----------------------------


class _SyncRun:
    """One sync broadcast: each gateway's pages read here, up to ``SYNC_WINDOW`` in flight.

    As on the async side every gateway has its own keyset stream, so a slow gateway only holds
    back its own pages: whenever a page is done, the next page *of that gateway* is read and
    submitted, while the other gateways go on.
    """

    def __init__(self, queryset: models.QuerySet[Any], call: BulkCall) -> None:
        self.queryset, self.call = queryset, call
        self.db, self.model = queryset.db, queryset.model
        self.deadline = _deadline(call.timeout)
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
        _aborted(exc, started, call.op, queryset.model, len(bulk.streams), bulk.trace)
        raise
    except BaseException as exc:
        bulk.trace.end(error=type(exc).__name__)
        raise
    _finish(report, started, call.op, queryset.model, len(bulk.streams), bulk.trace)
    broadcast_finished.send(
        sender=queryset.model, report=report, operation=call.op.signal, queryset=queryset
    )
    return report


# --- one session -----------------------------------------------------------------------------


def _loaded_endpoint(session: WebSocketSession) -> tuple[bool, str | None]:
    """``(known, endpoint)`` without a query: from a loaded ``api_gateway`` or an earlier send."""
    gateway_id = session.api_gateway_id
    if gateway_id is None:
        return True, None
    field: Any = type(session)._meta.get_field("api_gateway")
    if field.is_cached(session):  # select_related("api_gateway"), or accessed before
        gateway = field.get_cached_value(session)
        if isinstance(gateway, ApiGateway) and gateway.pk == gateway_id:
            return True, gateway.management_endpoint
    remembered = session.__dict__.get("_aws_ws_async_endpoint")
    if remembered is not None and remembered[0] == (gateway_id, session._state.db):
        return True, remembered[1]
    return False, None


def _remember(session: WebSocketSession, endpoints: Endpoints) -> str | None:
    """Keep the endpoint on the instance, so the next send on it asks no query."""
    endpoint = endpoints.get(session.api_gateway_id)
    session.__dict__["_aws_ws_async_endpoint"] = (
        (session.api_gateway_id, session._state.db),
        endpoint,
    )
    return endpoint


async def _aendpoint(session: WebSocketSession) -> str | None:
    known, endpoint = _loaded_endpoint(session)
    if known:
        return endpoint
    gateways = ApiGateway.objects.using(session._state.db)
    return _remember(session, await gateways.aendpoints([session.api_gateway_id]))


def _endpoint(session: WebSocketSession) -> str | None:
    known, endpoint = _loaded_endpoint(session)
    if known:
        return endpoint
    gateways = ApiGateway.objects.using(session._state.db)
    return _remember(session, gateways.endpoints([session.api_gateway_id]))


def _one(
    session: WebSocketSession,
    op: Operation,
    endpoint: str | None,
    policy: DeliveryPolicy,
    timeout: float | None,
) -> FanOut:
    gateway_id = session.api_gateway_id
    return FanOut(
        op,
        {gateway_id: [session.connection_id]},
        {gateway_id: endpoint},
        policy,
        deadline=_deadline(timeout),
    )


def _skipped(session: WebSocketSession) -> DeliveryReport:
    """A row already disconnected is not contacted: it is reported gone."""
    return DeliveryReport(gone=[session.connection_id], concurrency=1)


def _mark_reason(op: Operation, report: DeliveryReport) -> str | None:
    """The reason to write on the row after a single send or close (None: leave it)."""
    if op.closes:
        return None if report.failed else op.reason
    return op.reason if report.gone else None


async def arun_one(
    session: WebSocketSession,
    op: Operation,
    policy: DeliveryPolicy,
    timeout: float | None,  # noqa: ASYNC109 (a deadline handed to the fan-out)
) -> DeliveryReport:
    """One connection: post (or close) it, then mark the row on its own database."""
    if not op.closes and not session.connected:
        return _skipped(session)
    started = time.perf_counter()
    report = await _one(session, op, await _aendpoint(session), policy, timeout).run()
    telemetry.delivery_finished(report, f"session_{op.signal}", started=started, gateways=1)
    reason = _mark_reason(op, report)
    if reason is not None:
        await session.amark_disconnected(reason)
    return report


def run_one(
    session: WebSocketSession, op: Operation, policy: DeliveryPolicy, timeout: float | None
) -> DeliveryReport:
    """Sync twin of :func:`arun_one`: the query and the mark here, the post on the portal."""
    sync.check_not_on_loop()
    if not op.closes and not session.connected:
        return _skipped(session)
    started = time.perf_counter()
    report = sync.run(_one(session, op, _endpoint(session), policy, timeout).run)
    telemetry.delivery_finished(report, f"session_{op.signal}", started=started, gateways=1)
    reason = _mark_reason(op, report)
    if reason is not None:
        session.mark_disconnected(reason)
    return report


# --- closing in the background (logout) ----------------------------------------------------


def submit_close(
    queryset: models.QuerySet[Any], op: Operation
) -> concurrent.futures.Future[DeliveryReport]:
    """Mark the connected rows now (caller's thread), close them on the portal; don't wait."""
    db, model = queryset.db, queryset.model
    rows = list(
        queryset.filter(connected=True)
        .order_by()
        .values_list("connection_id", "api_gateway_id")
        .distinct()
    )
    groups: dict[int | None, list[str]] = {}
    for connection_id, gateway_id in rows:
        groups.setdefault(gateway_id, []).append(connection_id)
    mark_ids(model, db, [cid for cid, _ in rows], op.reason)
    endpoints: Endpoints = {None: None}
    if groups:
        endpoints = ApiGateway.objects.using(db).endpoints(groups)
    fan = FanOut(op, groups, endpoints, delivery_policy())
    return sync.submit(fan.run)
