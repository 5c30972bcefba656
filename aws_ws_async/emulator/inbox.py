"""One connection's message posts, bounded: a few in flight, a short queue, then refusal.

Before this, every text frame became its own task, all waiting for one shared backend pool: a
client sending 20,000 frames to a slow backend held 20,000 tasks and frames in memory (and the
connection's ``$disconnect`` queued behind them). AWS documents no per-connection bound; it
documents throttling, where "clients may receive 429 Too Many Requests" (AWS docs, "Protecting
your WebSocket API"). The emulator's bound is its own choice and answers the same way.

The bound is a count of workers (``max_in_flight``) plus a FIFO of frames waiting for a free
worker (at most ``max_queued`` frames and ``max_queued_bytes`` bytes). Workers are tasks created
only while there is work, so an idle connection holds none. When both are full,
:meth:`MessageInbox.offer` returns False and the caller refuses the frame; the socket keeps
being read, so pings, a close frame and the ``$disconnect`` that follows are never held up by a
flood (back-pressure by not reading the socket would delay exactly those).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("aws_ws_async.emulator.inbox")

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


@dataclass
class MessageLoad:
    """The emulator's counters of message posts, over all connections (for tests and logs)."""

    #: Message posts waiting for the backend right now.
    in_flight: int = 0
    #: Frames accepted but not yet posted right now.
    queued: int = 0
    #: The most posts one connection ever had in flight / queued at once.
    peak_in_flight_per_connection: int = 0
    peak_queued_per_connection: int = 0
    #: Frames accepted (posted or to be posted) and frames refused because the bound was full.
    accepted: int = 0
    refused: int = 0
    #: Message posts that finished (whatever the backend answered).
    completed: int = 0


class MessageInbox:
    """The bounded message posts of one connection."""

    def __init__(
        self,
        post: Callable[[bytes], Awaitable[None]],
        spawn: Spawn,
        load: MessageLoad,
        *,
        max_in_flight: int,
        max_queued: int,
        max_queued_bytes: int,
    ) -> None:
        if max_in_flight < 1 or max_queued < 0 or max_queued_bytes < 1:
            raise ValueError("max_in_flight and max_queued_bytes must be >= 1 and max_queued >= 0")
        self._post = post
        self._spawn = spawn
        self._load = load
        self._max_in_flight = max_in_flight
        self._max_queued = max_queued
        self._max_queued_bytes = max_queued_bytes
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._workers = 0

    @property
    def in_flight(self) -> int:
        return self._workers

    @property
    def queued(self) -> int:
        return len(self._queue)

    def offer(self, frame: bytes) -> bool:
        """Accept ``frame`` for posting (True) or refuse it because the bound is full (False)."""
        load = self._load
        if self._workers < self._max_in_flight:
            self._workers += 1
            load.in_flight += 1
            load.peak_in_flight_per_connection = max(
                load.peak_in_flight_per_connection, self._workers
            )
            self._spawn(self._work(frame))
        elif (
            len(self._queue) < self._max_queued
            and self._queued_bytes + len(frame) <= self._max_queued_bytes
        ):
            self._queue.append(frame)
            self._queued_bytes += len(frame)
            load.queued += 1
            load.peak_queued_per_connection = max(load.peak_queued_per_connection, len(self._queue))
        else:
            load.refused += 1
            return False
        load.accepted += 1
        return True

    async def _work(self, frame: bytes) -> None:
        """Post ``frame``, then whatever waits in the queue, then end (no idle workers)."""
        load = self._load
        try:
            while True:
                try:
                    await self._post(frame)
                except Exception:  # one bad post must not strand the queue behind it
                    logger.exception("posting a message failed")
                load.completed += 1
                if not self._queue:
                    return
                frame = self._queue.popleft()
                self._queued_bytes -= len(frame)
                load.queued -= 1
        finally:
            self._workers -= 1
            load.in_flight -= 1
            if self._workers == 0 and self._queue:  # cancelled (the emulator stops)
                load.queued -= len(self._queue)
                self._queue.clear()
                self._queued_bytes = 0
