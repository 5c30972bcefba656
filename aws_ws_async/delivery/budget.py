"""One ``@connections`` rate budget for a whole cluster, per account and Region.

API Gateway throttles an account's calls per Region together (10,000/s, ``@connections``
included), so workers that each bound only their own concurrency can exceed it together. A
:class:`RateBudget` is a sliding one-second window shared by every process that names the same
key: each post takes one permit first. The window is the ``limits`` library's moving window
(chosen over ``pyrate-limiter``: its rate is an argument of every call, so the cluster-wide
AIMD below can change it without rebuilding buckets, and the same strategy runs on Redis and
in memory). With a Redis URL the window and the current rate live in Redis; without one they
live in this process (the fallback: a budget per process).

Widespread 429s (the engine's limiter halving its bound) call :meth:`RateBudget.throttled`,
which halves the *shared* rate (at most once per cooldown, whoever sees them); the rate then
recovers linearly to the configured budget, so one worker's throttling slows every worker.

No Django here (engines take plain values): the domain layer builds budgets from settings and
hands :func:`use_budgets` a resolver; the engine asks :func:`budget_for` per endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

#: Endpoint URL -> the budget its posts take permits from (None: unbounded).
Resolver = Callable[[str], "RateBudget | None"]
_RESOLVER: ContextVar[Resolver | None] = ContextVar("aws_ws_async_rate_budget", default=None)

#: Halve on a wave of 429s, then recover this share of the budget per second.
DECREASE_FACTOR = 0.5
RECOVERY_SHARE_PER_SECOND = 0.05
COOLDOWN_SECONDS = 1.0
#: The window holds this share of the rate: a post starts a little after its permit (loop
#: scheduling, a slot to wait for), which would otherwise let a one-second window at the
#: endpoint see a few percent more than the budget.
WINDOW_SHARE = 0.97

_DECREASE_LUA = """
local rate = tonumber(redis.call('HGET', KEYS[1], 'rate') or ARGV[2])
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or '0')
local now, budget, floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local recovery, factor, cooldown = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if now - at < cooldown then return tostring(rate) end
local current = math.min(budget, rate + recovery * (now - at))
local lowered = math.max(floor, current * factor)
redis.call('HSET', KEYS[1], 'rate', tostring(lowered), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(lowered)
"""


def _current(rate: float, at: float, budget: float, now: float) -> float:
    return min(budget, rate + budget * RECOVERY_SHARE_PER_SECOND * max(0.0, now - at))


class RateBudget:
    """Permits per second shared by every holder of ``key`` (in Redis when ``redis_url``)."""

    def __init__(
        self, key: str, per_second: float, *, redis_url: str | None = None, floor: float = 1.0
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self.key = key
        self.per_second = float(per_second)
        self.floor = min(float(floor), self.per_second)
        self.redis_url = redis_url
        self._lock = asyncio.Lock()
        self._granted = 0  # permits taken from the window, not yet handed out
        self._rate: tuple[float, float] = (self.per_second, 0.0)  # (rate at, since) when local
        self._rate_read = -1.0
        self._rate_cache = self.per_second
        self._next_take = 0.0
        self._redis: Any = None
        self._strategy: Any = None
        #: Seen here: permits handed out, shared decreases this process asked for.
        self.permits = 0
        self.decreases = 0

    def _limits(self) -> Any:
        if self._strategy is None:
            from limits.aio.storage import MemoryStorage, RedisStorage  # the redis extra
            from limits.aio.strategies import MovingWindowRateLimiter

            storage: Any
            if self.redis_url:
                storage = RedisStorage(
                    "async+" + self.redis_url,
                    implementation="redispy",
                    key_prefix="aws_ws_async_budget",
                )
            else:
                storage = MemoryStorage()
            self._strategy = MovingWindowRateLimiter(storage)
        return self._strategy

    def _client(self) -> Any:
        if self._redis is None:
            import redis.asyncio  # the redis extra

            self._redis = redis.asyncio.Redis.from_url(self.redis_url or "")
        return self._redis

    @property
    def _aimd_key(self) -> str:
        return f"aws_ws_async_budget:aimd:{self.key}"

    async def current_rate(self) -> float:
        """The shared rate now (budget, or lower after throttling); read at most every 0.2 s."""
        now = time.time()
        if now - self._rate_read < 0.2:
            return self._rate_cache
        if self.redis_url:
            values = await self._client().hmget(self._aimd_key, "rate", "at")
            if values[0] is None:
                rate = self.per_second
            else:
                rate = _current(float(values[0]), float(values[1]), self.per_second, now)
        else:
            rate = _current(*self._rate, self.per_second, now)
        self._rate_read, self._rate_cache = now, max(self.floor, rate)
        return self._rate_cache

    async def throttled(self) -> float:
        """A wave of 429s: lower the shared rate (once per cooldown, cluster-wide)."""
        now = time.time()
        self.decreases += 1
        if self.redis_url:
            lowered = float(
                await self._client().eval(
                    _DECREASE_LUA,
                    1,
                    self._aimd_key,
                    now,
                    self.per_second,
                    self.floor,
                    self.per_second * RECOVERY_SHARE_PER_SECOND,
                    DECREASE_FACTOR,
                    COOLDOWN_SECONDS,
                )
            )
        else:
            rate, at = self._rate
            if now - at >= COOLDOWN_SECONDS:
                current = _current(rate, at, self.per_second, now)
                self._rate = (max(self.floor, current * DECREASE_FACTOR), now)
            lowered = self._rate[0]
        self._rate_read = -1.0
        return lowered

    async def acquire(self) -> None:
        """Wait for one permit. Permits are taken from the window in small batches (about
        10 ms worth) so a process makes about a hundred store calls a second, not one a post."""
        async with self._lock:
            while self._granted == 0:
                rate = await self.current_rate()
                batch = max(1, min(50, int(rate / 100)))
                pause = self._next_take - time.monotonic()
                if pause > 0:  # paced: no burst of a whole second's permits at once
                    await asyncio.sleep(pause)
                if await self._take(rate, batch):
                    self._next_take = time.monotonic() + self._granted / rate
            self._granted -= 1
            self.permits += 1

    async def _take(self, rate: float, batch: int) -> bool:
        """Take ``batch`` permits, else whatever the window has left, else wait for a batch.

        Under a budget the window is full most of the time, so the failure path is the common
        one: it takes the permits still free in one call (never one at a time, three store
        calls each, as a first version did: that spent the CPU the posts needed and granted
        permits in ones), and when none are free it sleeps until about a batch has left the
        window (the oldest entry expires at ``reset_time``, the rest follow at about ``rate``)
        instead of polling every few milliseconds.
        """
        from limits import RateLimitItemPerSecond

        strategy = self._limits()
        item = RateLimitItemPerSecond(max(1, int(rate * WINDOW_SHARE)))
        if await strategy.hit(item, self.key, cost=batch):
            self._granted += batch
            return True
        stats = await strategy.get_window_stats(item, self.key)
        free = min(batch, int(stats.remaining))
        if free > 0 and await strategy.hit(item, self.key, cost=free):
            self._granted += free
            return True
        until_batch = stats.reset_time - time.time() + (batch - 1) / rate
        await asyncio.sleep(min(0.05, max(0.001, until_batch)))
        return False

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


_DEFAULT: list[Resolver] = []


def install_default(resolver: Resolver) -> None:
    """The resolver used outside any :func:`use_budgets` block (the app installs one)."""
    _DEFAULT[:] = [resolver]


def budget_for(endpoint_url: str) -> RateBudget | None:
    """The budget posts to ``endpoint_url`` take permits from, if any (see :func:`use_budgets`)."""
    resolver = _RESOLVER.get() or (_DEFAULT[0] if _DEFAULT else None)
    return resolver(endpoint_url) if resolver is not None else None


@contextlib.contextmanager
def use_budgets(resolver: Resolver | None) -> Iterator[None]:
    """Engines created (and tasks started) inside this block take permits via ``resolver``."""
    token = _RESOLVER.set(resolver)
    try:
        yield
    finally:
        _RESOLVER.reset(token)
