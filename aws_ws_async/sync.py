"""The only bridge from sync code to our async internals: a long-lived "portal" event loop.

``async_to_sync`` from plain sync code runs a new event loop per call, so a client cached per
loop would be created and thrown away on every call (milliseconds each, plus a fresh
connection pool). The portal instead keeps one event loop running in a daemon thread for the
life of the process; every sync shim hands its coroutine to that loop and waits for the result,
so repeated calls reuse one cached client and its warm connections.

Rules:

* Safe from plain sync code (views, admin, management commands, the shell, Celery tasks) and
  from worker threads of a running loop (``loop.run_in_executor``, ``sync_to_async``).
* Refused on a thread that is running an event loop: blocking that loop while waiting would
  stall everything on it. Use the ``a``-prefixed twin there (``await qs.asend_message(...)``).
* The Django ORM: the portal's threads have their own database connections and cannot see rows
  of a caller's uncommitted transaction. The shims in :mod:`aws_ws_async.models.sending`
  therefore run every query in the caller's thread and hand the portal only connection ids and
  bytes. Anything else run through :func:`run` that touches the ORM does so inside a
  ``ThreadSensitiveContext`` whose connections are closed when the call ends.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.db import connections

from aws_ws_async.exceptions import AwsWsAsyncError

logger = logging.getLogger("aws_ws_async.sync")

T = TypeVar("T")


class SyncCallOnEventLoop(AwsWsAsyncError, SynchronousOnlyOperation):
    """A sync shim was called on a thread running an event loop; await the async twin instead."""


def _close_thread_connections() -> None:
    connections.close_all()


class Portal:
    """One event loop in a daemon thread, started on first use and stopped at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.calls = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The portal's loop, started if needed (and restarted in a forked child)."""
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or not self._loop.is_running():
                self._start()
            assert self._loop is not None
            return self._loop

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name="aws-ws-async-portal", daemon=True)
        thread.start()
        started.wait()
        self._loop, self._thread, self._pid = loop, thread, os.getpid()

    def _check_caller(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise SyncCallOnEventLoop(
                "This is the synchronous API and this thread runs an event loop; await the "
                "async twin instead (e.g. `await qs.asend_message(...)`)."
            )

    def submit(self, factory: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Schedule ``factory()`` on the portal loop without waiting (fire and forget)."""
        self._check_caller()
        self.calls += 1
        return asyncio.run_coroutine_threadsafe(self._wrap(factory), self.loop)

    def run(self, factory: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        """Run ``factory()`` on the portal loop and return its result (or raise its error).

        On ``timeout`` the coroutine is cancelled and :class:`TimeoutError` raised.
        """
        future = self.submit(factory)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"portal call did not finish within {timeout}s") from None

    @staticmethod
    async def _wrap(factory: Callable[[], Awaitable[T]]) -> T:
        async with ThreadSensitiveContext():
            try:
                return await factory()
            finally:
                await sync_to_async(_close_thread_connections)()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Close the portal loop's cached AWS clients and stop the loop (idempotent)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None or self._pid != os.getpid() or not loop.is_running():
            return
        from aws_ws_async.aws import aclose_clients

        try:
            asyncio.run_coroutine_threadsafe(aclose_clients(), loop).result(timeout)
        except Exception:  # pragma: no cover - best effort at interpreter exit
            logger.debug("closing portal clients failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()


_portal = Portal()
atexit.register(_portal.shutdown)


def portal() -> Portal:
    """The process-wide portal."""
    return _portal


def run(factory: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
    """Run an async callable from sync code through the portal (see module docs)."""
    return _portal.run(factory, timeout=timeout)
