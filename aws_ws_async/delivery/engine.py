"""The fan-out engine: bounded workers pull recipients, post, classify and retry.

Workers pull from the recipient iterable one id at a time (never materialising N tasks), take
a slot from the shared :class:`AdaptiveLimiter` per attempt, and sort every recipient into the
report. Classification is by HTTP status first, because botocore resolves a bare 410/429 (no
``x-amzn-errortype``) to a generic error code; the error type is used when it is present.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sized,
)
from dataclasses import dataclass

from aws_ws_async import telemetry
from aws_ws_async.delivery.budget import budget_for
from aws_ws_async.delivery.limiter import AdaptiveLimiter
from aws_ws_async.delivery.report import DeliveryReport, Failure, FailureReason
from aws_ws_async.delivery.transport import Outcome, Transport, TransportError


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    GONE = "gone"
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    FAILED = "failed"


_CODE_VERDICTS = {
    "GoneException": Verdict.GONE,
    "LimitExceededException": Verdict.THROTTLED,
    "ThrottlingException": Verdict.THROTTLED,
    "TooManyRequestsException": Verdict.THROTTLED,
    "ForbiddenException": Verdict.FAILED,
    "PayloadTooLargeException": Verdict.FAILED,
}


def classify(outcome: Outcome) -> Verdict:
    """Status-first classification; a modelled error type overrides an unusual status."""
    status = outcome.status
    if 200 <= status < 300:
        return Verdict.DELIVERED
    verdict = _CODE_VERDICTS.get(outcome.error_code)
    if verdict is not None:
        return verdict
    if status == 410:
        return Verdict.GONE
    if status == 429:
        return Verdict.THROTTLED
    if status >= 500 or status == 0:
        return Verdict.TRANSIENT
    return Verdict.FAILED


def failure_reason(outcome: Outcome) -> FailureReason:
    status = outcome.status
    if status == 403 or outcome.error_code == "ForbiddenException":
        return FailureReason.FORBIDDEN
    if status == 413 or outcome.error_code == "PayloadTooLargeException":
        return FailureReason.PAYLOAD_TOO_LARGE
    if status == 429:
        return FailureReason.THROTTLED
    if status >= 500:
        return FailureReason.SERVER_ERROR
    return FailureReason.BAD_REQUEST


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Retry and concurrency knobs (the Django layer fills them from settings)."""

    max_concurrency: int = 100
    max_throttle_retries: int = 6
    max_transient_retries: int = 3
    backoff_base_seconds: float = 0.05
    backoff_max_seconds: float = 5.0
    #: Keep retrying 410 for this long (a connection whose $connect is still running).
    gone_retry_seconds: float = 0.0
    #: List delivered ids in the report (counts are always kept).
    collect_delivered: bool = True
    #: Total deadline of one attempt (connect + send + headers + whole body), whatever the
    #: transport; ``None`` for none. Per-read timeouts alone let a peer that trickles its body
    #: one byte at a time hold a worker (and the broadcast) for hours.
    attempt_timeout_seconds: float | None = 15.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform(0, min(max, base * 2**attempt))."""
        cap = min(self.backoff_max_seconds, self.backoff_base_seconds * (2 ** max(0, attempt - 1)))
        return random.uniform(0, cap)


Recipients = AsyncIterable[str] | Iterable[str]
SendFn = Callable[[str], Awaitable[Outcome]]


class Engine:
    """Delivers one payload (or one DELETE) to many connections through one transport."""

    def __init__(
        self,
        transport: Transport,
        *,
        policy: DeliveryPolicy | None = None,
        limiter: AdaptiveLimiter | None = None,
        on_gone: Callable[[str], None] | None = None,
    ) -> None:
        self.transport = transport
        self.policy = policy or DeliveryPolicy()
        self.limiter = limiter or AdaptiveLimiter(self.policy.max_concurrency)
        self.on_gone = on_gone
        #: The cluster-wide rate budget of this endpoint (None: only the limiter bounds posts).
        self.budget = budget_for(transport.endpoint_url)
        #: The report the current run fills in; still readable if the run is cancelled.
        self.report: DeliveryReport | None = None

    async def post(self, recipients: Recipients, payload: bytes) -> DeliveryReport:
        transport = self.transport

        def send(connection_id: str) -> Awaitable[Outcome]:
            return transport.post(connection_id, payload)

        return await self._run(recipients, send, "post")

    async def delete(self, recipients: Recipients) -> DeliveryReport:
        """Server-side close; a 410 means the connection was already gone."""
        return await self._run(recipients, self.transport.delete, "delete")

    async def probe(self, recipients: Recipients) -> DeliveryReport:
        """``GET @connections/{id}`` each: ``delivered`` = still open, ``gone`` = closed (410).

        Same workers, limiter, rate budget and retries as a post (the reaper confirms doubtful
        sessions with it).
        """
        return await self._run(recipients, self.transport.get, "get")

    async def _run(
        self, recipients: Recipients, send: SendFn, kind: str = "post"
    ) -> DeliveryReport:
        """Fan ``send`` out over ``recipients``; ``kind`` labels the per-post telemetry."""
        report = self.report = DeliveryReport(concurrency=self.limiter.ceiling)
        started = time.perf_counter()
        # None unless something records (then one test per attempt, nothing else).
        observer = telemetry.post_observer(kind)
        workers = self.limiter.ceiling
        if isinstance(recipients, Sized):
            workers = max(1, min(workers, len(recipients)))
        if isinstance(recipients, AsyncIterable):
            aiterator = aiter(recipients)
            lock = asyncio.Lock()
            coros = [
                self._async_worker(aiterator, lock, send, report, observer) for _ in range(workers)
            ]
        else:
            iterator = iter(recipients)
            coros = [self._sync_worker(iterator, send, report, observer) for _ in range(workers)]
        tasks = [asyncio.ensure_future(c) for c in coros]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        report.duration = time.perf_counter() - started
        report.lowest_concurrency = self.limiter.lowest
        return report

    async def _sync_worker(
        self,
        iterator: Iterator[str],
        send: SendFn,
        report: DeliveryReport,
        observer: telemetry.PostObserver | None,
    ) -> None:
        for connection_id in iterator:
            await self._one(connection_id, send, report, observer)

    async def _async_worker(
        self,
        iterator: AsyncIterator[str],
        lock: asyncio.Lock,
        send: SendFn,
        report: DeliveryReport,
        observer: telemetry.PostObserver | None,
    ) -> None:
        while True:
            async with lock:  # async generators refuse concurrent __anext__
                try:
                    connection_id = await anext(iterator)
                except StopAsyncIteration:
                    return
            await self._one(connection_id, send, report, observer)

    async def _one(
        self,
        connection_id: str,
        send: SendFn,
        report: DeliveryReport,
        observer: telemetry.PostObserver | None = None,
    ) -> None:
        policy = self.policy
        limiter = self.limiter
        attempts = throttle_retries = transient_retries = 0
        gone_deadline: float | None = None
        while True:
            attempts += 1
            await limiter.acquire()
            try:
                if self.budget is not None:
                    await self.budget.acquire()
            except BaseException:
                limiter.release()
                raise
            began = time.monotonic()
            try:
                async with asyncio.timeout(policy.attempt_timeout_seconds):
                    outcome = await send(connection_id)
            except TransportError as exc:
                outcome = Outcome(0, exc.kind, exc.detail)
            except TimeoutError:
                outcome = Outcome(0, "timeout", "timed out")
            except Exception as exc:  # a bug must still show up in the report
                report.failed.append(
                    Failure(
                        connection_id,
                        FailureReason.ERROR,
                        None,
                        f"{type(exc).__name__}: {exc}",
                        attempts,
                    )
                )
                return
            finally:
                limiter.release()
            rtt = time.monotonic() - began
            verdict = classify(outcome)
            if observer is not None:
                observer.attempt(rtt, verdict.value, outcome.status, attempts)
            if verdict is Verdict.DELIVERED:
                limiter.record_success(rtt)
                report.delivered_count += 1
                if policy.collect_delivered:
                    report.delivered.append(connection_id)
                return
            if verdict is Verdict.GONE:
                if policy.gone_retry_seconds > 0:
                    now = time.monotonic()
                    if gone_deadline is None:
                        gone_deadline = now + policy.gone_retry_seconds
                    if now < gone_deadline:
                        report.retries += 1
                        delay = min(policy.backoff(attempts), gone_deadline - now, 0.5)
                        await asyncio.sleep(delay)
                        continue
                report.gone.append(connection_id)
                if self.on_gone is not None:
                    self.on_gone(connection_id)
                return
            if verdict is Verdict.THROTTLED:
                report.throttled += 1
                lowered = limiter.decreases
                limiter.record_throttle(connection_id, rtt)
                if self.budget is not None and limiter.decreases != lowered:
                    await self.budget.throttled()  # a wave of 429s: lower the shared rate
                if throttle_retries < policy.max_throttle_retries:
                    throttle_retries += 1
                    report.retries += 1
                    await asyncio.sleep(policy.backoff(throttle_retries))
                    continue
                report.failed.append(
                    _failure(connection_id, FailureReason.THROTTLED, outcome, attempts)
                )
                return
            if verdict is Verdict.TRANSIENT:
                if transient_retries < policy.max_transient_retries:
                    transient_retries += 1
                    report.retries += 1
                    await asyncio.sleep(policy.backoff(transient_retries))
                    continue
                if outcome.status:
                    reason = FailureReason.SERVER_ERROR
                elif outcome.error_code == "timeout":
                    reason = FailureReason.TIMEOUT
                else:
                    reason = FailureReason.CONNECTION_ERROR
                report.failed.append(_failure(connection_id, reason, outcome, attempts))
                return
            report.failed.append(
                _failure(connection_id, failure_reason(outcome), outcome, attempts)
            )
            return


def _failure(connection_id: str, reason: str, outcome: Outcome, attempts: int) -> Failure:
    detail = outcome.message or outcome.error_code
    if outcome.status and outcome.error_code and outcome.error_code != str(outcome.status):
        detail = f"{outcome.error_code}: {outcome.message}" if outcome.message else detail
    return Failure(connection_id, reason, outcome.status or None, detail, attempts)


async def deliver(
    transport: Transport,
    recipients: Recipients,
    payload: bytes,
    *,
    policy: DeliveryPolicy | None = None,
    limiter: AdaptiveLimiter | None = None,
    on_gone: Callable[[str], None] | None = None,
) -> DeliveryReport:
    """Post ``payload`` to every connection id in ``recipients``; see :class:`Engine`."""
    engine = Engine(transport, policy=policy, limiter=limiter, on_gone=on_gone)
    return await engine.post(recipients, payload)
