"""Sending to sessions: the Django side of the delivery engine.

The QuerySet and model methods (``asend_message``, ``send_message``, ``adisconnect``...) are
defined on mixins here and inherited by the classes in :mod:`aws_ws_async.models.sessions`.

Async path: recipients are streamed from the database with keyset pagination on ``pk`` (one
query per ``db_chunk_size`` rows, the next chunk fetched while the current one is sent), one
engine per gateway endpoint runs concurrently under one shared concurrency bound, and gone
connections are marked disconnected in bulk as they are found.

Sync path: every query runs in the caller's thread (so a shim called inside
``transaction.atomic()`` sees the caller's rows); each chunk of ids is handed to the portal loop
(:mod:`aws_ws_async.sync`), which reuses its cached client across calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import models
from django.utils import timezone

from aws_ws_async import aws
from aws_ws_async.conf import get_settings
from aws_ws_async.delivery import (
    AdaptiveLimiter,
    AiobotocoreTransport,
    DeliveryPolicy,
    DeliveryReport,
    Engine,
    Failure,
    encode_payload,
)

if TYPE_CHECKING:
    from aws_ws_async.delivery.engine import Recipients
    from aws_ws_async.models.sessions import WebSocketSession

logger = logging.getLogger("aws_ws_async.sending")

#: Gone connections are marked disconnected in UPDATEs of at most this many ids.
GONE_BATCH = 500

ProgressFn = Callable[[DeliveryReport], None]


def delivery_policy(
    *,
    concurrency: int | None = None,
    gone_retry_seconds: float = 0.0,
    collect_delivered: bool = True,
) -> DeliveryPolicy:
    """The engine policy from ``settings.AWS_WS_ASYNC`` plus per-call overrides."""
    s = get_settings()
    if concurrency is not None and concurrency < 1:
        raise ValueError("concurrency must be a positive integer")
    return DeliveryPolicy(
        max_concurrency=concurrency or s.max_concurrency,
        max_throttle_retries=s.max_throttle_retries,
        max_transient_retries=s.max_transient_retries,
        backoff_base_seconds=s.backoff_base_seconds,
        backoff_max_seconds=s.backoff_max_seconds,
        gone_retry_seconds=gone_retry_seconds,
        collect_delivered=collect_delivered,
    )


# ---------------------------------------------------------------------------------------------
# Endpoints and transports
# ---------------------------------------------------------------------------------------------


def _endpoint_for(api_id: str, stage: str) -> str | None:
    """The gateway's ``@connections`` URL, or None when it was never provisioned."""
    if not api_id or not stage:
        return None
    return aws.management_endpoint(api_id, stage)


def _gateway_rows(gateway_ids: Iterable[int | None]) -> models.QuerySet[Any, tuple[Any, ...]]:
    """(pk, api_id, stage_name) of the gateways asked for; the same query for both twins."""
    from aws_ws_async.models.gateways import ApiGateway

    wanted = [g for g in gateway_ids if g is not None]
    return ApiGateway.objects.filter(pk__in=wanted).values_list("pk", "api_id", "stage_name")


def endpoints_for(gateway_ids: Iterable[int | None]) -> dict[int | None, str | None]:
    """Sync: gateway pk -> endpoint URL (None: no gateway, or not provisioned)."""
    result: dict[int | None, str | None] = {None: None}
    for pk, api_id, stage in _gateway_rows(gateway_ids):
        result[pk] = _endpoint_for(api_id, stage)
    return result


async def aendpoints_for(gateway_ids: Iterable[int | None]) -> dict[int | None, str | None]:
    result: dict[int | None, str | None] = {None: None}
    async for pk, api_id, stage in _gateway_rows(gateway_ids):
        result[pk] = _endpoint_for(api_id, stage)
    return result


async def transport_for(endpoint_url: str, policy: DeliveryPolicy) -> AiobotocoreTransport:
    """The running loop's cached client for this endpoint, wrapped as a transport.

    The pool is sized for the larger of the configured and the requested concurrency, so
    one-off sends share the broadcast client instead of creating a small one of their own.
    """
    pool = max(get_settings().max_concurrency, policy.max_concurrency)
    client = await aws.get_management_client(endpoint_url, max_pool_connections=pool)
    return AiobotocoreTransport(client, fast=get_settings().fast_signing)


def _unreachable(connection_ids: Iterable[str], gateway_id: int | None) -> list[Failure]:
    reason = "no_gateway" if gateway_id is None else "gateway_not_provisioned"
    detail = (
        "session has no api_gateway"
        if gateway_id is None
        else f"gateway {gateway_id} has no api_id or stage"
    )
    return [Failure(cid, reason, None, detail, 0) for cid in connection_ids]


# ---------------------------------------------------------------------------------------------
# Marking sessions disconnected in bulk
# ---------------------------------------------------------------------------------------------


def _disconnect_values(reason: str) -> dict[str, Any]:
    now = timezone.now()
    return {
        "connected": False,
        "disconnected_at": now,
        "disconnect_reason": reason,
        "updated_on": now,
    }


def _connected_batches(model: type[models.Model], ids: list[str]) -> Iterator[models.QuerySet[Any]]:
    """The still-connected rows of ``ids``, ``GONE_BATCH`` ids per query (so per UPDATE)."""
    for start in range(0, len(ids), GONE_BATCH):
        batch = ids[start : start + GONE_BATCH]
        yield model._default_manager.filter(connection_id__in=batch, connected=True)


def mark_disconnected_ids(model: type[models.Model], ids: list[str], reason: str) -> int:
    """Sync: one UPDATE per ``GONE_BATCH`` ids; only rows still connected change."""
    changed = 0
    for rows in _connected_batches(model, ids):
        changed += rows.update(**_disconnect_values(reason))
    return changed


async def amark_disconnected_ids(model: type[models.Model], ids: list[str], reason: str) -> int:
    changed = 0
    for rows in _connected_batches(model, ids):
        changed += await rows.aupdate(**_disconnect_values(reason))
    return changed


class _BulkMarker:
    """Collects ids from the engine's ``on_gone`` hook and flushes them in background UPDATEs."""

    def __init__(self, model: type[models.Model], reason: str) -> None:
        self.model = model
        self.reason = reason
        self._pending: list[str] = []
        self._tasks: set[asyncio.Future[int]] = set()
        self.marked = 0

    def add(self, connection_id: str) -> None:
        self._pending.append(connection_id)
        if len(self._pending) >= GONE_BATCH:
            self._flush()

    def _flush(self) -> None:
        ids, self._pending = self._pending, []
        if ids:
            self._tasks.add(
                asyncio.ensure_future(amark_disconnected_ids(self.model, ids, self.reason))
            )

    async def aclose(self) -> None:
        self._flush()
        for count in await asyncio.gather(*self._tasks):
            self.marked += count
        self._tasks.clear()


# ---------------------------------------------------------------------------------------------
# Streaming recipients
# ---------------------------------------------------------------------------------------------


async def _stream_connection_ids(
    queryset: models.QuerySet[Any], chunk_size: int
) -> AsyncIterator[str]:
    """Connection ids in pk order, ``chunk_size`` rows per query, one chunk read ahead."""

    def fetch(after: int) -> list[tuple[int, str]]:
        rows = queryset.filter(pk__gt=after).order_by("pk").values_list("pk", "connection_id")
        return list(rows[:chunk_size])

    afetch = sync_to_async(fetch)
    rows = await afetch(0)
    while rows:
        ahead = asyncio.ensure_future(afetch(rows[-1][0])) if len(rows) == chunk_size else None
        try:
            for _, connection_id in rows:
                yield connection_id
        except BaseException:
            if ahead is not None:
                ahead.cancel()
            raise
        rows = await ahead if ahead is not None else []


def iter_recipient_chunks(
    queryset: models.QuerySet[Any], chunk_size: int
) -> Iterator[list[tuple[int, str, int | None]]]:
    """Sync: lists of (pk, connection_id, api_gateway_id), keyset-paginated on pk."""
    last = 0
    while True:
        rows = list(
            queryset.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "connection_id", "api_gateway_id")[:chunk_size]
        )
        if not rows:
            return
        yield rows
        if len(rows) < chunk_size:
            return
        last = rows[-1][0]


# ---------------------------------------------------------------------------------------------
# What a broadcast and a bulk close do differently
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Operation:
    """The few points where a broadcast (POST) and a server-side close (DELETE) differ.

    Everything else (streaming or chunking the recipients, one engine per gateway under one
    shared limiter, marking rows in bulk) is the same loop, written once below and handed one
    of these.
    """

    #: Name in the summary log line: ``broadcast`` or ``disconnect``.
    name: str
    #: ``operation`` sent with ``broadcast_finished``: ``send`` or ``disconnect``.
    signal: str
    #: ``disconnect_reason`` written on the rows this operation marks.
    reason: str
    #: The encoded message; None for a DELETE.
    payload: bytes | None = None

    @property
    def closes(self) -> bool:
        return self.payload is None

    async def deliver(self, engine: Engine, recipients: Recipients) -> DeliveryReport:
        if self.payload is None:
            return await engine.delete(recipients)
        return await engine.post(recipients, self.payload)

    def unreachable(self, ids: list[str], gateway_id: int | None) -> DeliveryReport:
        """No endpoint: a post fails, while a close has no connection left to close (gone)."""
        if self.payload is None:
            return DeliveryReport(gone=list(ids))
        return DeliveryReport(failed=_unreachable(ids, gateway_id))

    def to_mark(self, report: DeliveryReport) -> list[str]:
        """Ids whose rows end disconnected: a close marks what it closed, not only the gone."""
        return report.delivered + report.gone if self.closes else report.gone


def _send_op(payload: bytes) -> _Operation:
    return _Operation("broadcast", "send", "gone", payload)


def _close_op(reason: str) -> _Operation:
    return _Operation("disconnect", "disconnect", reason)


def _finish(report: DeliveryReport, started: float, op: _Operation, sender: type[Any]) -> None:
    """Stamp the duration and log the one summary line of this broadcast."""
    report.duration = time.perf_counter() - started
    logger.info("%s finished: %s", op.name, report.summary(), extra={"model": sender.__name__})


# ---------------------------------------------------------------------------------------------
# Broadcast and bulk close (QuerySet level), async: streamed per gateway
# ---------------------------------------------------------------------------------------------


async def _astream_all(
    queryset: models.QuerySet[Any],
    op: _Operation,
    policy: DeliveryPolicy,
    chunk: int,
    limiter: AdaptiveLimiter,
) -> DeliveryReport:
    """One engine per gateway, all concurrent, each streaming its connected rows by pk.

    Gone connections are marked in background batches while the engines run (the close also
    marks the ones it closed), so memory stays flat however many rows match.
    """
    base = queryset.filter(connected=True)
    gateway_ids = [
        g async for g in base.order_by().values_list("api_gateway_id", flat=True).distinct()
    ]
    endpoints = await aendpoints_for(gateway_ids)
    marker = _BulkMarker(queryset.model, op.reason)

    async def one_gateway(gateway_id: int | None) -> DeliveryReport:
        rows = _stream_connection_ids(base.filter(api_gateway_id=gateway_id), chunk)
        endpoint = endpoints.get(gateway_id)
        if endpoint is None:
            part = DeliveryReport()
            async for cid in rows:
                lost = op.unreachable([cid], gateway_id)
                part.merge(lost)
                for marked in op.to_mark(lost):
                    marker.add(marked)
            return part
        transport = await transport_for(endpoint, policy)
        engine = Engine(transport, policy=policy, limiter=limiter, on_gone=marker.add)
        part = await op.deliver(engine, rows)
        if op.closes:  # the gone ones went through ``on_gone`` already
            for cid in part.delivered:
                marker.add(cid)
        return part

    report = DeliveryReport(concurrency=policy.max_concurrency)
    try:
        parts = await asyncio.gather(*(one_gateway(g) for g in gateway_ids))
    finally:
        await marker.aclose()
    for part in parts:
        report.merge(part)
    return report


async def abroadcast(
    queryset: models.QuerySet[Any],
    data: Any,
    *,
    concurrency: int | None = None,
    db_chunk_size: int | None = None,
    collect_delivered: bool = True,
) -> DeliveryReport:
    """Send ``data`` to every connected session of ``queryset``; see the module docs."""
    op = _send_op(encode_payload(data))  # fails before anything is read or sent
    policy = delivery_policy(concurrency=concurrency, collect_delivered=collect_delivered)
    return await _arun_operation(queryset, op, policy, db_chunk_size)


async def adisconnect_all(
    queryset: models.QuerySet[Any],
    reason: str = "server",
    *,
    concurrency: int | None = None,
    db_chunk_size: int | None = None,
) -> DeliveryReport:
    """``DELETE @connections/{id}`` for every connected session, then mark them disconnected.

    A 410 means already closed: marked too. Rows without a (provisioned) gateway have no
    connection to close and are only marked (listed as gone). Failures stay connected.
    """
    policy = delivery_policy(concurrency=concurrency)
    return await _arun_operation(queryset, _close_op(reason), policy, db_chunk_size)


async def _arun_operation(
    queryset: models.QuerySet[Any],
    op: _Operation,
    policy: DeliveryPolicy,
    db_chunk_size: int | None,
) -> DeliveryReport:
    """Run ``op`` over every connected session of ``queryset``, then log and signal the report."""
    from aws_ws_async.signals import broadcast_finished

    started = time.perf_counter()
    chunk = db_chunk_size or get_settings().db_chunk_size
    limiter = AdaptiveLimiter(policy.max_concurrency)
    report = await _astream_all(queryset, op, policy, chunk, limiter)
    _finish(report, started, op, queryset.model)
    await broadcast_finished.asend(
        sender=queryset.model, report=report, operation=op.signal, queryset=queryset
    )
    return report


# ---------------------------------------------------------------------------------------------
# Broadcast and bulk close (QuerySet level), sync: chunks in this thread, sends on the portal
# ---------------------------------------------------------------------------------------------


def _run_chunks(
    queryset: models.QuerySet[Any],
    op: _Operation,
    policy: DeliveryPolicy,
    chunk: int,
    limiter: AdaptiveLimiter,
    *,
    timeout: float | None = None,
    progress: ProgressFn | None = None,
) -> DeliveryReport:
    """Read ``chunk`` connected rows at a time here, fan each chunk out on the portal loop.

    Only one chunk of ids is held at a time; gateway endpoints are looked up the first time a
    chunk mentions the gateway, and the chunk's rows are marked before the next one is read.
    """
    from aws_ws_async import sync

    endpoints: dict[int | None, str | None] = {}
    report = DeliveryReport(concurrency=policy.max_concurrency)
    for rows in iter_recipient_chunks(queryset.filter(connected=True), chunk):
        groups: dict[int | None, list[str]] = {}
        for _, cid, gateway_id in rows:
            groups.setdefault(gateway_id, []).append(cid)
        missing = [g for g in groups if g not in endpoints]
        if missing:
            endpoints.update(endpoints_for(missing))
        part = sync.run(
            partial(_fan_out_groups, op, groups, endpoints, policy, limiter), timeout=timeout
        )
        mark_disconnected_ids(queryset.model, op.to_mark(part), op.reason)
        report.merge(part)
        if progress is not None:
            progress(report)
    return report


async def _fan_out_groups(
    op: _Operation,
    groups: dict[int | None, list[str]],
    endpoints: dict[int | None, str | None],
    policy: DeliveryPolicy,
    limiter: AdaptiveLimiter,
) -> DeliveryReport:
    """On the portal loop: one engine per gateway for one chunk of ids."""

    async def one(gateway_id: int | None, ids: list[str]) -> DeliveryReport:
        endpoint = endpoints.get(gateway_id)
        if endpoint is None:
            return op.unreachable(ids, gateway_id)
        transport = await transport_for(endpoint, policy)
        return await op.deliver(Engine(transport, policy=policy, limiter=limiter), ids)

    report = DeliveryReport()
    for part in await asyncio.gather(*(one(g, ids) for g, ids in groups.items())):
        report.merge(part)
    return report


def broadcast(
    queryset: models.QuerySet[Any],
    data: Any,
    *,
    concurrency: int | None = None,
    db_chunk_size: int | None = None,
    collect_delivered: bool = True,
    progress: ProgressFn | None = None,
) -> DeliveryReport:
    """Sync twin of :func:`abroadcast`: queries here, posts on the portal loop."""
    from aws_ws_async import sync

    sync.check_not_on_loop()
    op = _send_op(encode_payload(data))
    policy = delivery_policy(concurrency=concurrency, collect_delivered=collect_delivered)
    return _run_operation(queryset, op, policy, db_chunk_size, progress=progress)


def disconnect_all(
    queryset: models.QuerySet[Any],
    reason: str = "server",
    *,
    concurrency: int | None = None,
    db_chunk_size: int | None = None,
    timeout: float | None = None,
) -> DeliveryReport:
    """Sync twin of :func:`adisconnect_all` (queries in the caller's thread)."""
    from aws_ws_async import sync

    sync.check_not_on_loop()
    policy = delivery_policy(concurrency=concurrency)
    return _run_operation(queryset, _close_op(reason), policy, db_chunk_size, timeout=timeout)


def _run_operation(
    queryset: models.QuerySet[Any],
    op: _Operation,
    policy: DeliveryPolicy,
    db_chunk_size: int | None,
    *,
    progress: ProgressFn | None = None,
    timeout: float | None = None,
) -> DeliveryReport:
    """Sync twin of :func:`_arun_operation`: chunks read here, posted on the portal loop."""
    from aws_ws_async.signals import broadcast_finished

    started = time.perf_counter()
    chunk = db_chunk_size or get_settings().db_chunk_size
    limiter = AdaptiveLimiter(policy.max_concurrency)
    report = _run_chunks(queryset, op, policy, chunk, limiter, progress=progress, timeout=timeout)
    _finish(report, started, op, queryset.model)
    broadcast_finished.send(
        sender=queryset.model, report=report, operation=op.signal, queryset=queryset
    )
    return report


# ---------------------------------------------------------------------------------------------
# One session
# ---------------------------------------------------------------------------------------------


def _session_endpoint_sync(session: WebSocketSession) -> str | None:
    if session.api_gateway_id is None:
        return None
    return endpoints_for([session.api_gateway_id]).get(session.api_gateway_id)


async def _session_endpoint(session: WebSocketSession) -> str | None:
    if session.api_gateway_id is None:
        return None
    field = type(session)._meta.get_field("api_gateway")
    if field.is_cached(session):
        gateway = session.api_gateway
        assert gateway is not None
        return _endpoint_for(gateway.api_id, gateway.stage_name)
    return (await aendpoints_for([session.api_gateway_id])).get(session.api_gateway_id)


async def _deliver_one(
    op: _Operation,
    endpoint: str | None,
    gateway_id: int | None,
    connection_id: str,
    policy: DeliveryPolicy,
) -> DeliveryReport:
    if endpoint is None:
        report = op.unreachable([connection_id], gateway_id)
        report.concurrency = 1
        return report
    transport = await transport_for(endpoint, policy)
    return await op.deliver(Engine(transport, policy=policy), [connection_id])


def _single_policy(gone_retry_seconds: float = 0.0) -> DeliveryPolicy:
    return replace(delivery_policy(gone_retry_seconds=gone_retry_seconds), max_concurrency=1)


async def asend_to_session(
    session: WebSocketSession, data: Any, *, gone_retry_seconds: float = 0.0
) -> DeliveryReport:
    """Post to one connection; a 410 (after ``gone_retry_seconds``) marks it disconnected."""
    payload = encode_payload(data)
    if not session.connected:
        return DeliveryReport(gone=[session.connection_id], concurrency=1)
    endpoint = await _session_endpoint(session)
    policy = _single_policy(gone_retry_seconds)
    report = await _deliver_one(
        _send_op(payload), endpoint, session.api_gateway_id, session.connection_id, policy
    )
    if report.gone:
        await session.amark_disconnected("gone")
    return report


def send_to_session(
    session: WebSocketSession,
    data: Any,
    *,
    gone_retry_seconds: float = 0.0,
    timeout: float | None = None,
) -> DeliveryReport:
    from aws_ws_async import sync

    sync.check_not_on_loop()
    payload = encode_payload(data)
    if not session.connected:
        return DeliveryReport(gone=[session.connection_id], concurrency=1)
    endpoint = _session_endpoint_sync(session)
    policy = _single_policy(gone_retry_seconds)
    gateway_id, cid = session.api_gateway_id, session.connection_id
    report = sync.run(
        lambda: _deliver_one(_send_op(payload), endpoint, gateway_id, cid, policy),
        timeout=timeout,
    )
    if report.gone:
        session.mark_disconnected("gone")
    return report


async def adisconnect_session(session: WebSocketSession, reason: str = "server") -> DeliveryReport:
    """Server-side close of one connection; 204 or 410 both end with the row disconnected."""
    endpoint = await _session_endpoint(session)
    op = _close_op(reason)
    gateway_id = session.api_gateway_id
    report = await _deliver_one(op, endpoint, gateway_id, session.connection_id, _single_policy())
    if not report.failed:
        await session.amark_disconnected(reason)
    return report


def disconnect_session(
    session: WebSocketSession, reason: str = "server", *, timeout: float | None = None
) -> DeliveryReport:
    from aws_ws_async import sync

    sync.check_not_on_loop()
    endpoint = _session_endpoint_sync(session)
    op, gateway_id, cid = _close_op(reason), session.api_gateway_id, session.connection_id
    report = sync.run(
        lambda: _deliver_one(op, endpoint, gateway_id, cid, _single_policy()), timeout=timeout
    )
    if not report.failed:
        session.mark_disconnected(reason)
    return report


# ---------------------------------------------------------------------------------------------
# Mixins inherited by the public classes
# ---------------------------------------------------------------------------------------------


class SendingQuerySetMixin:
    """Broadcast and close methods of :class:`~aws_ws_async.models.WebSocketSessionQuerySet`."""

    async def asend_message(
        self,
        data: Any,
        *,
        concurrency: int | None = None,
        db_chunk_size: int | None = None,
        collect_delivered: bool = True,
    ) -> DeliveryReport:
        """Send ``data`` to every connected session selected; returns the report."""
        return await abroadcast(
            self,  # type: ignore[arg-type]
            data,
            concurrency=concurrency,
            db_chunk_size=db_chunk_size,
            collect_delivered=collect_delivered,
        )

    def send_message(
        self,
        data: Any,
        *,
        concurrency: int | None = None,
        db_chunk_size: int | None = None,
        collect_delivered: bool = True,
        progress: ProgressFn | None = None,
    ) -> DeliveryReport:
        """Sync twin of :meth:`asend_message` (through the portal loop)."""
        return broadcast(
            self,  # type: ignore[arg-type]
            data,
            concurrency=concurrency,
            db_chunk_size=db_chunk_size,
            collect_delivered=collect_delivered,
            progress=progress,
        )

    async def adisconnect(
        self, reason: str = "server", *, concurrency: int | None = None
    ) -> DeliveryReport:
        """Close every selected connection server-side and mark the rows disconnected."""
        return await adisconnect_all(self, reason, concurrency=concurrency)  # type: ignore[arg-type]

    def disconnect(
        self, reason: str = "server", *, concurrency: int | None = None
    ) -> DeliveryReport:
        return disconnect_all(self, reason, concurrency=concurrency)  # type: ignore[arg-type]


class SendingSessionMixin:
    """Per-connection methods of :class:`~aws_ws_async.models.WebSocketSession`."""

    async def asend_message(self, data: Any, *, gone_retry_seconds: float = 0.0) -> DeliveryReport:
        """Post to this connection. ``gone_retry_seconds`` keeps retrying 410 that long.

        API Gateway answers 410 until the connection's ``$connect`` has completed, so a welcome
        message queued from the ``$connect`` handler should pass a few seconds here.
        """
        return await asend_to_session(
            self,  # type: ignore[arg-type]
            data,
            gone_retry_seconds=gone_retry_seconds,
        )

    def send_message(
        self, data: Any, *, gone_retry_seconds: float = 0.0, timeout: float | None = None
    ) -> DeliveryReport:
        return send_to_session(
            self,  # type: ignore[arg-type]
            data,
            gone_retry_seconds=gone_retry_seconds,
            timeout=timeout,
        )

    async def adisconnect(self, reason: str = "server") -> DeliveryReport:
        """Close this connection server-side (``DELETE @connections``) and mark it."""
        return await adisconnect_session(self, reason)  # type: ignore[arg-type]

    def disconnect(self, reason: str = "server", *, timeout: float | None = None) -> DeliveryReport:
        return disconnect_session(self, reason, timeout=timeout)  # type: ignore[arg-type]
