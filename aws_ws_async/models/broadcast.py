"""The one fan-out routine: recipients grouped per gateway -> one engine per gateway.

Every send path goes through :class:`FanOut`: the async stream (each gateway's recipients
streamed from the database), each chunk of a sync broadcast, a single session, and the close
of a user's connections at logout. All engines of one fan-out share one
:class:`~aws_ws_async.delivery.AdaptiveLimiter`, so the concurrency bound holds across gateways.

Stopping is part of the routine, so it is the same everywhere: when one gateway's part fails
(a database error while streaming its rows), when the ``deadline`` passes or when ``stop`` is
set (from another thread), every other part is cancelled **and awaited** before
:class:`~aws_ws_async.exceptions.BroadcastAborted` (or ``BroadcastTimeout``) is raised, so
nothing is posted after the call returns or raises. The exception carries the partial report:
what each engine had finished, plus the posts that were in flight as failures with reason
``cancelled``. Gone connections reported so far have been handed to the ``marker``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

from aws_ws_async import aws
from aws_ws_async.conf import get_settings
from aws_ws_async.delivery import (
    AdaptiveLimiter,
    DeliveryPolicy,
    DeliveryReport,
    Engine,
    Failure,
    Transport,
)
from aws_ws_async.delivery.engine import Recipients
from aws_ws_async.delivery.report import FailureReason
from aws_ws_async.exceptions import BroadcastAborted, BroadcastTimeout
from aws_ws_async.models.endpoints import Endpoints
from aws_ws_async.models.marks import GONE_BATCH
from aws_ws_async.models.operations import Operation

#: Rows found gone are written at most this long after the first of them was found (or
#: as soon as ``GONE_BATCH`` are pending).
FLUSH_SECONDS = 0.5


async def transport_for(endpoint_url: str, policy: DeliveryPolicy) -> Transport:
    """The running loop's cached transport for this endpoint (``aws.get_transport``: the
    ``transport`` setting, cached per endpoint and pool with the loop's client, closed with it).

    The pool is sized for the larger of the configured and the requested concurrency, so
    one-off sends share the broadcast client instead of creating a small one of their own.
    """
    pool = max(get_settings().max_concurrency, policy.max_concurrency)
    transport: Transport = await aws.get_transport(endpoint_url, pool)
    return transport


class Marker:
    """Ids whose rows end disconnected, written in background batches while engines run.

    A batch is written when ``GONE_BATCH`` ids are pending or ``FLUSH_SECONDS`` after the first
    pending one, so marks learned early are on disk even if the broadcast later fails.
    """

    def __init__(self, write: Callable[[list[str]], Awaitable[int]]) -> None:
        self._write = write
        self._pending: list[str] = []
        self._tasks: set[asyncio.Future[int]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.marked = 0

    def add(self, connection_id: str) -> None:
        self._pending.append(connection_id)
        if len(self._pending) >= GONE_BATCH:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ids, self._pending = self._pending, []
        if ids:
            self._tasks.add(asyncio.ensure_future(self._write(ids)))

    async def aclose(self) -> None:
        """Write what is pending and wait for every write (their errors propagate)."""
        self.flush()
        tasks, self._tasks = self._tasks, set()
        for count in await asyncio.gather(*tasks):
            self.marked += count


class _Handout:
    """Hands recipients to the engine's workers and remembers which id each worker holds.

    A worker asks for its next id only once its current one is done, so after a
    cancellation the ids still held (and not in the report) are exactly the posts in flight.
    """

    def __init__(self, recipients: Recipients) -> None:
        self._recipients = recipients
        self.count = 0
        self.stopped = False
        self._held: dict[object, str] = {}

    def _take(self, connection_id: str) -> None:
        self.count += 1
        self._held[asyncio.current_task()] = connection_id

    def wrap(self) -> Recipients:
        if isinstance(self._recipients, AsyncIterable):
            return self._astream(self._recipients)
        return _Sized(self, list(self._recipients))

    async def _astream(self, recipients: AsyncIterable[str]) -> AsyncIterator[str]:
        async for connection_id in recipients:
            if self.stopped:
                return
            self._take(connection_id)
            yield connection_id

    def in_flight(self, report: DeliveryReport) -> list[str]:
        """Ids handed out but not in ``report`` (at most ``count - report.total`` of them)."""
        done = set(report.gone) | {f.connection_id for f in report.failed}
        done.update(report.delivered)
        held = [cid for cid in self._held.values() if cid not in done]
        return held[: max(0, self.count - report.total)]


class _Sized:
    """A list of ids the engine can size its workers by, handed out one at a time."""

    def __init__(self, handout: _Handout, ids: list[str]) -> None:
        self._handout, self._ids = handout, ids

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        for connection_id in self._ids:
            if self._handout.stopped:
                return
            self._handout._take(connection_id)
            yield connection_id


class _Part:
    """One gateway's share of a fan-out."""

    def __init__(self, fan: FanOut, gateway_id: int | None, recipients: Recipients) -> None:
        self.fan = fan
        self.gateway_id = gateway_id
        self.handout = _Handout(recipients)
        self.engine: Engine | None = None
        self.lost = DeliveryReport()
        self.task: asyncio.Future[DeliveryReport] | None = None

    async def run(self) -> DeliveryReport:
        fan, op = self.fan, self.fan.op
        endpoint = fan.endpoints.get(self.gateway_id)
        if endpoint is None:
            return await self._unreachable()
        transport = await transport_for(endpoint, fan.policy)
        on_gone = fan.marker.add if fan.marker is not None else None
        self.engine = Engine(transport, policy=fan.policy, limiter=fan.limiter, on_gone=on_gone)
        report = await op.deliver(self.engine, self.handout.wrap())
        if op.closes and fan.marker is not None:  # the gone ones went through on_gone already
            for connection_id in report.delivered:
                fan.marker.add(connection_id)
        return report

    async def _unreachable(self) -> DeliveryReport:
        op, marker = self.fan.op, self.fan.marker
        recipients = self.handout.wrap()
        ids: AsyncIterable[str] | Iterator[str]
        ids = recipients if isinstance(recipients, AsyncIterable) else iter(recipients)
        async for connection_id in _aiter(ids):
            lost = op.unreachable([connection_id], self.gateway_id)
            self.lost.merge(lost)
            if marker is not None:
                for marked in op.to_mark(lost):
                    marker.add(marked)
        return self.lost

    def report(self) -> DeliveryReport:
        """What this part has done so far (its final report once it finished)."""
        task = self.task
        if task is not None and task.done() and not task.cancelled() and not task.exception():
            return task.result()
        if self.engine is None or self.engine.report is None:
            return self.lost
        return self.engine.report

    def partial(self) -> DeliveryReport:
        """After a stop: the report so far plus the posts cut off in flight (``cancelled``)."""
        report = DeliveryReport()
        report.merge(self.report())
        for connection_id in self.handout.in_flight(report):
            report.failed.append(
                Failure(connection_id, FailureReason.CANCELLED, None, "the broadcast stopped", 1)
            )
        return report


async def _aiter(ids: AsyncIterable[str] | Iterator[str]) -> AsyncIterator[str]:
    if isinstance(ids, AsyncIterable):
        async for item in ids:
            yield item
    else:
        for item in ids:
            yield item


class FanOut:
    """One operation over groups of recipients, one engine per gateway (see module docs)."""

    def __init__(
        self,
        op: Operation,
        groups: Mapping[int | None, Recipients],
        endpoints: Endpoints,
        policy: DeliveryPolicy,
        limiter: AdaptiveLimiter | None = None,
        *,
        marker: Marker | None = None,
        deadline: float | None = None,
        stop: concurrent.futures.Future[None] | None = None,
    ) -> None:
        self.op, self.endpoints, self.policy = op, endpoints, policy
        self.limiter = limiter or AdaptiveLimiter(policy.max_concurrency)
        self.marker, self.deadline, self.stop = marker, deadline, stop
        self.parts = [_Part(self, g, recipients) for g, recipients in groups.items()]

    def snapshot(self) -> DeliveryReport:
        """Counts so far, with the gone and failed lists (delivered ids: final report only)."""
        report = DeliveryReport(concurrency=self.policy.max_concurrency)
        for part in self.parts:
            done = part.report()
            report.delivered_count += done.delivered_count
            report.gone.extend(done.gone)
            report.failed.extend(done.failed)
            report.retries += done.retries
            report.throttled += done.throttled
        return report

    async def run(self) -> DeliveryReport:
        """Deliver to every group; raise ``BroadcastAborted`` / ``BroadcastTimeout`` on a stop."""
        if len(self.parts) == 1 and self.deadline is None and self.stop is None:
            return await self._run_alone(self.parts[0])
        loop = asyncio.get_running_loop()
        for part in self.parts:
            part.task = asyncio.ensure_future(part.run())
        pending: set[asyncio.Future[Any]] = {p.task for p in self.parts if p.task is not None}
        stop = asyncio.wrap_future(self.stop) if self.stop is not None else None
        cause: BaseException | None = None
        timed_out = False
        try:
            while pending and cause is None and not timed_out:
                wait_for = pending | ({stop} if stop is not None else set())
                remaining = None if self.deadline is None else self.deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    timed_out = True
                    break
                done, _ = await asyncio.wait(
                    wait_for, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    timed_out = True
                for future in done:
                    if future is stop:
                        cause = RuntimeError("stopped by the caller (another part failed)")
                        continue
                    pending.discard(future)
                    if future.exception() is not None:
                        cause = future.exception()
        except BaseException:  # cancelled from outside: leave nothing running
            await self._cancel()
            raise
        if cause is None and not timed_out:
            return self._merged(DeliveryReport(concurrency=self.policy.max_concurrency))
        await self._cancel()
        report = DeliveryReport(concurrency=self.policy.max_concurrency)
        for part in self.parts:
            report.merge(part.partial())
            if self.op.closes and self.marker is not None and not _finished(part):
                for connection_id in part.report().delivered:
                    self.marker.add(connection_id)
        if timed_out:
            raise BroadcastTimeout(f"{self.op.name} did not finish within its timeout", report)
        raise BroadcastAborted(f"{self.op.name} stopped: {cause!r}", report) from cause

    async def _run_alone(self, part: _Part) -> DeliveryReport:
        """One gateway, nothing to watch: run it in this task (a single send's common case)."""
        try:
            done = await part.run()
        except Exception as exc:
            report = DeliveryReport(concurrency=self.policy.max_concurrency)
            report.merge(part.partial())
            if self.op.closes and self.marker is not None:
                for connection_id in part.report().delivered:
                    self.marker.add(connection_id)
            raise BroadcastAborted(f"{self.op.name} stopped: {exc!r}", report) from exc
        report = DeliveryReport(concurrency=self.policy.max_concurrency)
        report.merge(done)
        report.lowest_concurrency = report.lowest_concurrency or self.limiter.lowest
        return report

    def _merged(self, report: DeliveryReport) -> DeliveryReport:
        for part in self.parts:
            report.merge(part.report())
        report.lowest_concurrency = report.lowest_concurrency or self.limiter.lowest
        return report

    async def _cancel(self) -> None:
        tasks = [p.task for p in self.parts if p.task is not None and not p.task.done()]
        for part in self.parts:
            part.handout.stopped = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _finished(part: _Part) -> bool:
    task = part.task
    return bool(task and task.done() and not task.cancelled() and task.exception() is None)
