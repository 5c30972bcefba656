"""The async path's connection pool: connections made by the coroutine that needs one.

Why not ``psycopg_pool.AsyncConnectionPool``: it grows and maintains itself with background
tasks, and a task cancelled while it waits in ``getconn()`` during a growth can lose the
cancellation (psycopg issue #1345, still open in 3.3.3). Every event loop cancels its tasks when
it closes (``asyncio.run``, uvicorn's exit, pytest-asyncio after each test), so the loop's close
then waits forever on such a task; the suite saw it as a 1-in-5 hang at test teardown.

This pool has no task of its own: a request that finds no idle connection opens one itself,
inside its own cancellation scope, bounded by a semaphore of ``max_size`` slots (waiting at most
``timeout`` seconds for one). A connection goes back to the idle list (newest first, so the
pool shrinks back under light load once connections age out) only when it is idle outside a
transaction; anything else (an error mid-statement, a cancellation, a broken socket) closes
it. Connections older than ``max_lifetime`` are closed when next taken. :meth:`aclose` closes the
idle ones and marks the pool closed; those in use are closed when given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from django.db import OperationalError

#: Seconds a connection is kept before it is replaced (psycopg_pool's default too).
DEFAULT_MAX_LIFETIME = 3600.0


class ConnectionPool:
    """Up to ``max_size`` psycopg ``AsyncConnection``s of one loop, made on demand."""

    def __init__(
        self,
        params: dict[str, Any],
        *,
        max_size: int,
        timeout: float,
        configure: Callable[[Any], Awaitable[None]],
        name: str,
        max_lifetime: float = DEFAULT_MAX_LIFETIME,
    ) -> None:
        self.params = params
        self.max_size = max_size
        self.timeout = timeout
        self.max_lifetime = max_lifetime
        self.name = name
        self.closed = False
        self._configure = configure
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[tuple[float, Any]] = []
        #: Connections opened so far (tests and the debug log).
        self.opened = 0

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A connection for the block; given back (or closed) when it ends."""
        if self.closed:
            raise OperationalError(f"{self.name}: the pool is closed")
        try:
            async with asyncio.timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise OperationalError(
                f"{self.name}: no connection free within {self.timeout:g} s "
                f"(max_size {self.max_size})"
            ) from None
        born, conn = 0.0, None
        try:
            born, conn = await self._take()
            yield conn
        finally:
            try:
                if conn is not None:
                    await self._give_back(born, conn)
            finally:
                self._slots.release()

    async def _take(self) -> tuple[float, Any]:
        now = time.monotonic()
        while self._idle:
            born, conn = self._idle.pop()
            if now - born < self.max_lifetime and not conn.closed:
                return born, conn
            await _close_quietly(conn)
        import psycopg

        conn = await psycopg.AsyncConnection.connect(**self.params)
        try:
            await self._configure(conn)
        except BaseException:
            await _close_quietly(conn)
            raise
        self.opened += 1
        return now, conn

    async def _give_back(self, born: float, conn: Any) -> None:
        from psycopg.pq import TransactionStatus

        reusable = (
            not self.closed
            and not conn.closed
            and conn.info.transaction_status == TransactionStatus.IDLE
        )
        if reusable:
            self._idle.append((born, conn))
        else:
            await _close_quietly(conn)

    async def aclose(self) -> None:
        """Close the idle connections now, the others when they are given back."""
        self.closed = True
        idle, self._idle = self._idle, []
        for _born, conn in idle:
            await _close_quietly(conn)


async def _close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):
        await conn.close()
