"""The only bridge from sync code to our async internals: a long-lived "portal" event loop.

``async_to_sync`` from plain sync code runs a new event loop per call, so a client cached per
loop would be created and thrown away on every call (milliseconds each, plus a fresh
connection pool). The portal instead keeps one event loop running in a daemon thread for the
life of the process; every sync twin hands its coroutine to that loop and waits for the result,
so repeated calls reuse one cached client and its warm connections.

Rules:

* **Fresh context.** Work handed to the portal runs in an *empty* :mod:`contextvars` context.
  Under an ASGI server a sync view runs on the request's thread-sensitive executor, and
  asgiref keeps that executor in a context variable. ``asyncio.run_coroutine_threadsafe``
  copies the caller's context, so an inherited one would send any ``sync_to_async`` call made
  on the portal back to the very thread that is blocked waiting for the portal: a deadlock
  the test client never shows. Nothing of the caller's context is meant to cross.
* **Safe from any sync caller**: plain code, WSGI and ASGI sync views, ``sync_to_async`` with
  ``thread_sensitive`` True or False, worker threads, and forked children (the child starts
  its own portal).
* **Refused on a thread that runs an event loop** (``refuse_on_loop``, on by default for
  :func:`run`): blocking that loop would stall everything on it. Await the ``a`` twin there.
  On the portal thread itself :func:`run` is always refused (it could never finish).
* **The caller owns the work.** A caller that stops waiting (its ``timeout``, or any exception
  raised in its thread: ``KeyboardInterrupt``, a worker's timeout signal) cancels the
  coroutine it handed over and waits (at most :data:`STOP_GRACE_SECONDS`) until it has
  unwound, so nothing it does happens after :func:`run` has raised.
* **Transactions.** Sending twins read their rows in the caller's thread (so they see its
  uncommitted rows) and hand the portal only connection ids and bytes; they are allowed
  inside ``atomic()`` because a post is not a database write. Provisioning twins use the ORM
  on the portal and create things in AWS that a rollback cannot take back; they pass
  ``refuse_in_transaction`` and are refused inside ``atomic()``.
* **ORM on the portal** (``orm=True``): the call runs in its own ``ThreadSensitiveContext`` and
  the connections its queries opened are closed when it ends.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import connections, transaction

from aws_ws_async.exceptions import CalledInsideTransaction, SyncCallOnEventLoop

logger = logging.getLogger("aws_ws_async.sync")

#: How long :func:`run` waits, after cancelling abandoned work, for it to unwind.
STOP_GRACE_SECONDS = 5.0

T = TypeVar("T")
P = ParamSpec("P")

__all__ = [
    "CalledInsideTransaction",
    "Portal",
    "SyncCallOnEventLoop",
    "call_outside_transaction",
    "check_not_in_transaction",
    "check_not_on_loop",
    "in_transaction",
    "portal",
    "run",
    "submit",
]


def _close_thread_connections() -> None:
    connections.close_all()


def on_loop_thread() -> bool:
    """True when the calling thread is running an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def check_not_on_loop() -> None:
    """Raise :class:`SyncCallOnEventLoop` when called on a thread running an event loop."""
    if on_loop_thread():
        raise SyncCallOnEventLoop(
            "This is the synchronous API and this thread runs an event loop; await the "
            "async twin instead (e.g. `await qs.asend_message(...)`)."
        )


def in_transaction(using: str | None = None) -> bool:
    """True when ``using``'s connection (default: ``default``) is inside ``atomic()``."""
    return bool(transaction.get_connection(using).in_atomic_block)


def check_not_in_transaction(what: str, using: str | None = None) -> None:
    """Raise :class:`CalledInsideTransaction` when ``using``'s connection is in ``atomic()``."""
    if in_transaction(using):
        raise CalledInsideTransaction(
            f"{what}() calls AWS and must run after the database transaction commits: call it "
            "outside transaction.atomic() or from transaction.on_commit()."
        )


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

        # Started from an empty context too, so the thread itself carries nothing over.
        thread = threading.Thread(
            target=contextvars.Context().run, args=(run,), name="aws-ws-async-portal", daemon=True
        )
        thread.start()
        started.wait()
        self._loop, self._thread, self._pid = loop, thread, os.getpid()

    def _after_fork_in_child(self) -> None:
        # The parent's portal thread does not exist in the child, and the lock may have been
        # held by another parent thread at fork time: start from scratch.
        self._lock = threading.Lock()
        self._loop = self._thread = None
        self._pid = 0

    def submit(
        self, factory: Callable[[], Awaitable[T]], *, orm: bool = False
    ) -> concurrent.futures.Future[T]:
        """Schedule ``factory()`` on the portal loop and return its future without waiting.

        Allowed from a thread running a loop (it does not block). The coroutine starts in an
        empty context (see the module docs).
        """
        self.calls += 1
        loop = self.loop
        coro = self._wrap_orm(factory) if orm else self._wrap(factory)
        # run_coroutine_threadsafe copies the *current* context into the loop callback that
        # creates the task; running it inside a new empty Context makes that copy empty.
        return contextvars.Context().run(asyncio.run_coroutine_threadsafe, coro, loop)

    def run(
        self,
        factory: Callable[[], Awaitable[T]],
        *,
        timeout: float | None = None,
        orm: bool = False,
        refuse_on_loop: bool = True,
        refuse_in_transaction: str | None = None,
        using: str | None = None,
    ) -> T:
        """Run ``factory()`` on the portal loop and return its result (or raise its error).

        ``refuse_in_transaction`` names the operation for the error raised when ``using``'s
        connection is inside ``atomic()``. On ``timeout`` the coroutine is cancelled and
        :class:`TimeoutError` raised.
        """
        if refuse_on_loop:
            check_not_on_loop()
        if threading.current_thread() is self._thread and self._pid == os.getpid():
            # Waiting on the portal from the portal thread can never finish.
            raise SyncCallOnEventLoop("sync.run() called on the portal thread itself: await it")
        if refuse_in_transaction is not None:
            check_not_in_transaction(refuse_in_transaction, using)
        started, ended = threading.Event(), threading.Event()

        async def tracked() -> T:
            started.set()
            try:
                return await factory()
            finally:
                ended.set()

        future = self.submit(tracked, orm=orm)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            self._stop(future, started, ended)
            raise TimeoutError(f"portal call did not finish within {timeout}s") from None
        except BaseException:
            # The caller stops waiting (KeyboardInterrupt, a worker's timeout exception, a
            # signal handler's error): the work it asked for must stop too, not run on unowned.
            self._stop(future, started, ended)
            raise

    @staticmethod
    def _stop(
        future: concurrent.futures.Future[T], started: threading.Event, ended: threading.Event
    ) -> None:
        """Cancel the work and wait (a bounded grace) until it has unwound, so nothing it
        does (a post, a write) happens after the caller's :func:`run` has raised."""
        future.cancel()
        if started.is_set():
            ended.wait(STOP_GRACE_SECONDS)

    @staticmethod
    async def _wrap(factory: Callable[[], Awaitable[T]]) -> T:
        return await factory()

    @staticmethod
    async def _wrap_orm(factory: Callable[[], Awaitable[T]]) -> T:
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
            contextvars.Context().run(
                asyncio.run_coroutine_threadsafe, aclose_clients(), loop
            ).result(timeout)
        except Exception:  # pragma: no cover - best effort at interpreter exit
            logger.debug("closing portal clients failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()


_portal = Portal()
atexit.register(_portal.shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_portal._after_fork_in_child)


def portal() -> Portal:
    """The process-wide portal."""
    return _portal


def run(
    factory: Callable[[], Awaitable[T]],
    *,
    timeout: float | None = None,
    orm: bool = False,
    refuse_on_loop: bool = True,
    refuse_in_transaction: str | None = None,
    using: str | None = None,
) -> T:
    """Run an async callable from sync code through the portal (see module docs)."""
    return _portal.run(
        factory,
        timeout=timeout,
        orm=orm,
        refuse_on_loop=refuse_on_loop,
        refuse_in_transaction=refuse_in_transaction,
        using=using,
    )


def submit(
    factory: Callable[[], Awaitable[T]], *, orm: bool = False
) -> concurrent.futures.Future[T]:
    """Schedule an async callable on the portal without waiting (see :meth:`Portal.submit`)."""
    return _portal.submit(factory, orm=orm)


def call_outside_transaction(
    func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run ``await func(*args, **kwargs)`` on the portal with the ORM, refused inside ``atomic()``.

    The rule for twins that create things in AWS and record them in the database
    (provisioning): see the module docs.
    """
    name = getattr(func, "__name__", "this operation").removeprefix("a")
    return run(lambda: func(*args, **kwargs), orm=True, refuse_in_transaction=name)
