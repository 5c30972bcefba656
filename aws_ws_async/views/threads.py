"""Reused request threads for the gateway routes: what ``ThreadSensitiveContext`` does, pooled.

Django's ASGI handler runs every request inside ``asgiref``'s ``ThreadSensitiveContext``: the
request's ``thread_sensitive`` work (signal receivers, ORM calls through ``sync_to_async``) runs
in one thread of its own, which is started for the request and joined after it. Under uvicorn
with a load generator, starting, waking and joining that thread was the largest single cost of
a gateway request, larger than its query (docs/deployment.md has the profile): about 0.5 ms of
server CPU per request, the same for a trivial view.

``RequestThreads`` keeps the same contract (every ``thread_sensitive`` call of one request runs
in one thread, used by nobody else meanwhile, so Django's per-thread connections stay
request-private) but keeps the threads: a request borrows an idle single-thread executor and
gives it back when it is done. Because the thread outlives the request, its database
connection does too, exactly as in a threaded WSGI server: ``CONN_MAX_AGE`` keeps it (checked
by ``close_old_connections`` on ``request_started``/``request_finished`` as usual) and with
Django's pool it goes back to the pool at the end of each request as before.

The mechanism is asgiref's own: the request's context object is registered in
``SyncToAsync.context_to_thread_executor`` with the borrowed executor, as a fresh
``ThreadSensitiveContext`` would register a new one. A task that outlives its request (a
background close started by ``spawn``) finds no executor for the context and gets a new thread
of its own from asgiref, as before, never the borrowed one. More requests in flight than
``size`` get a fresh thread each (the unpooled behaviour), so the pool bounds threads kept, not
requests served.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import SyncToAsync, ThreadSensitiveContext

#: Threads kept by default: one per request in flight up to this many.
DEFAULT_SIZE = 16


class RequestExecutor(ThreadPoolExecutor):
    """One request's thread; ``first`` (if set) runs in it just before its next work item.

    ``GatewayASGIHandler`` puts the ``request_started`` receivers there: they then run in the
    request's thread, before any of its sync work (``close_old_connections`` still precedes
    every query), inside the request's first thread hop instead of a hop of their own.
    """

    first: Callable[[], object] | None = None
    #: Whether the current request ran anything in this thread (``GatewayASGIHandler`` skips
    #: the ``request_finished`` hop of a request that touched no sync connection).
    used: bool = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.used = True
        first, self.first = self.first, None
        if first is None:
            return super().submit(fn, *args, **kwargs)
        return super().submit(_after, first, fn, *args, **kwargs)


def _after(first: Callable[[], object], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    first()
    return fn(*args, **kwargs)


class RequestThreads:
    """A pool of single-thread executors lent to one request at a time."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")
        self.size = size
        self._idle: list[RequestExecutor] = []
        self._lock = threading.Lock()
        self._created = 0

    @property
    def created(self) -> int:
        """Executors (threads) made so far, pooled or not: a test's measure of reuse."""
        return self._created

    def _borrow(self) -> tuple[RequestExecutor, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
            self._created += 1
            number = self._created
        name = f"aws-ws-request-{number}"  # unique: a thread dump tells the requests apart
        return RequestExecutor(max_workers=1, thread_name_prefix=name), False

    def _give_back(self, executor: RequestExecutor) -> None:
        executor.first = None
        executor.used = False
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)  # over the pool's size: the thread ends once idle

    @contextlib.asynccontextmanager
    async def context(self) -> AsyncIterator[RequestExecutor | None]:
        """The request's thread-sensitive context, on a borrowed thread (yielded).

        Inside an enclosing context (a caller already chose the request's thread) nothing
        changes, as with a nested ``ThreadSensitiveContext``, and None is yielded.
        """
        if SyncToAsync.thread_sensitive_context.get(None) is not None:
            yield None
            return
        marker = ThreadSensitiveContext()  # never entered: only the key asgiref looks up
        executor, _reused = self._borrow()
        SyncToAsync.context_to_thread_executor[marker] = executor
        token = SyncToAsync.thread_sensitive_context.set(marker)
        try:
            yield executor
        finally:
            SyncToAsync.thread_sensitive_context.reset(token)
            SyncToAsync.context_to_thread_executor.pop(marker, None)
            self._give_back(executor)

    def shutdown(self) -> None:
        """End the idle threads (tests; a server process simply exits)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for executor in idle:
            executor.shutdown(wait=True)
