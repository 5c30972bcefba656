"""An AIMD concurrency bound shared by every engine of one broadcast.

A single throttled connection (its client-side buffer is full, which API Gateway also reports
as 429) must not slow a broadcast down; many distinct connections throttled within a short
window mean the account's request budget is exhausted, and sending harder only burns retries.
So: halve the bound when throttling is widespread, creep back up by about one slot per round
trip while posts succeed (additive increase, multiplicative decrease, as TCP does).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable


class AdaptiveLimiter:
    """Bounds posts in flight, before the HTTP client is called.

    Acquire a slot before each attempt and release it as soon as the response is in, so sleeps
    between retries never hold a slot and nothing waits inside the connection pool (where a
    request signed early could outlive SigV4's five-minute window).
    """

    def __init__(
        self,
        ceiling: int,
        *,
        floor: int = 1,
        widespread_ids: int = 3,
        widespread_fraction: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ceiling < 1:
            raise ValueError("ceiling must be at least 1")
        self.ceiling = ceiling
        self.floor = max(1, min(floor, ceiling))
        self.widespread_ids = widespread_ids
        self.widespread_fraction = widespread_fraction
        self._clock = clock
        self._limit = float(ceiling)
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._throttled: deque[tuple[float, str]] = deque()
        self._last_decrease = -math.inf
        self._rtt = 0.05
        #: Lowest bound reached and how often it was lowered (for the report).
        self.lowest = ceiling
        self.decreases = 0
        self.max_in_flight = 0

    @property
    def limit(self) -> int:
        return max(self.floor, int(self._limit))

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def acquire(self) -> None:
        if self._in_flight < self.limit and not self._waiters:
            self._take()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was granted just before the cancellation
            else:
                self._waiters.remove(future)
            raise

    def release(self) -> None:
        self._in_flight -= 1
        self._wake()

    def _take(self) -> None:
        self._in_flight += 1
        if self._in_flight > self.max_in_flight:
            self.max_in_flight = self._in_flight

    def _wake(self) -> None:
        while self._waiters and self._in_flight < self.limit:
            future = self._waiters.popleft()
            if not future.done():
                self._take()
                future.set_result(None)

    @property
    def _window(self) -> float:
        # About two round trips: long enough to see the effect of the last decrease.
        return min(1.0, max(0.02, 2 * self._rtt))

    def record_success(self, rtt: float) -> None:
        self._rtt += 0.1 * (rtt - self._rtt)
        if self._limit < self.ceiling:
            self._limit = min(float(self.ceiling), self._limit + 1.0 / self._limit)
            self._wake()

    def record_throttle(self, connection_id: str, rtt: float) -> None:
        """Note a 429; lower the bound if many distinct connections were throttled lately."""
        self._rtt += 0.1 * (rtt - self._rtt)
        now = self._clock()
        window = self._window
        self._throttled.append((now, connection_id))
        while self._throttled and self._throttled[0][0] < now - window:
            self._throttled.popleft()
        if now - self._last_decrease < window:
            return
        threshold = max(self.widespread_ids, math.ceil(self.limit * self.widespread_fraction))
        distinct = {cid for _, cid in self._throttled}
        if len(distinct) >= threshold and self._limit > self.floor:
            self._limit = max(float(self.floor), self._limit / 2)
            self._last_decrease = now
            self._throttled.clear()
            self.decreases += 1
            self.lowest = min(self.lowest, self.limit)
