"""The per-loop cache: the aioboto3 sessions, clients and transports of each event loop.

See :mod:`aws_ws_async.aws` for the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.loaders import Loader, create_loader

from aws_ws_async.aws.resolve import client_config, credentials_key, make_session
from aws_ws_async.conf import AppSettings, get_settings

# ---------------------------------------------------------------------------------------------
# The per-loop cache: sessions, clients and transports of one event loop.
# ---------------------------------------------------------------------------------------------
#
# * aiobotocore clients are costly to create and bound to the loop they were created on, and
#   refreshable credentials (container, instance-profile, SSO) hold an ``asyncio.Lock``: so each
#   loop gets its own session (hence credentials), clients and transports. Sessions share one
#   botocore data loader, so a new loop's first client costs milliseconds, not a model reload.
# * Creation runs in a task of its own, shielded from callers: a caller cancelled while the
#   client is being made (slow credentials) leaves the creation running for everyone else
#   waiting on it; a failed creation is retried by the next call.
# * Pool sizes are rounded up to powers of two (at most MAX_POOL_CONNECTIONS), so whatever
#   ``concurrency=`` callers pass, an endpoint has a handful of clients at most.
# * Closing: ``asyncio.run`` (and asgiref's ``async_to_sync``, pytest-asyncio, uvicorn/daphne)
#   call ``loop.shutdown_asyncgens()`` before closing the loop. Each loop with a cache gets one
#   tiny "sentinel" async generator, parked at its ``yield``; its ``finally`` closes the loop's
#   transports and clients while the loop can still run their cleanup. The cache maps loops
#   weakly, so a loop closed some other way only leaves its entry to the garbage collector.

logger = logging.getLogger("aws_ws_async.aws")

MANAGEMENT_SERVICE = "apigatewaymanagementapi"
#: The largest connection pool one cached ``@connections`` client gets.
MAX_POOL_CONNECTIONS = 1024


@dataclass
class _LoopCache:
    """What one loop has cached, plus the sentinel generator that closes it at shutdown."""

    sessions: dict[tuple[Any, ...], aioboto3.Session] = field(default_factory=dict)
    clients: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    contexts: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    creating: dict[tuple[Any, ...], asyncio.Task[Any]] = field(default_factory=dict)
    transports: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    sentinel: AsyncGenerator[None, None] | None = None


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopCache] = (
    weakref.WeakKeyDictionary()
)
_process_sessions: dict[tuple[Any, ...], aioboto3.Session] = {}
_lock = threading.Lock()
_loader: Loader | None = None


def _after_fork_in_child() -> None:
    # Another parent thread may have held the lock at fork time; the child starts afresh.
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Counters:
    created = 0
    closed = 0


_counters = _Counters()


@dataclass(frozen=True)
class ClientStats:
    """Process-wide counters of ``@connections`` clients; tests and benchmarks read these."""

    created: int
    closed: int
    open_on_this_loop: int


def _shared_session(app_settings: AppSettings) -> aioboto3.Session:
    """A new session whose botocore data loader is shared by every session of the process."""
    global _loader
    session = make_session(app_settings)
    with _lock:
        if _loader is None:
            _loader = create_loader()
        loader = _loader
    with contextlib.suppress(AttributeError):  # a different aioboto3 loads its own
        session._session.register_component("data_loader", loader)
    return session


def _cache() -> _LoopCache:
    loop = asyncio.get_running_loop()
    cache = _loops.get(loop)
    if cache is None:
        cache = _loops[loop] = _LoopCache()
    return cache


def cached_session(app_settings: AppSettings | None = None) -> aioboto3.Session:
    """The running loop's session for these credentials (a process-wide one off any loop).

    Sessions are per loop because the credentials they resolve may hold an ``asyncio.Lock``.
    """
    s = app_settings or get_settings()
    key = credentials_key(s)
    try:
        sessions = _cache().sessions
    except RuntimeError:
        sessions = _process_sessions
    with _lock:
        session = sessions.get(key)
    if session is None:
        session = _shared_session(s)
        with _lock:
            session = sessions.setdefault(key, session)
    return session


def pool_size_for(requested: int | None = None) -> int:
    """The pool a client gets for ``requested`` connections: the configured concurrency, or
    the next power of two above it (capped), so the number of distinct pools stays small."""
    base = get_settings().max_concurrency
    if not requested or requested <= base:
        return base
    return max(base, min(MAX_POOL_CONNECTIONS, 1 << (requested - 1).bit_length()))


def management_client_config(max_pool_connections: int | None = None) -> AioConfig:
    """Config of a delivery client: our engine owns retries, so botocore makes one attempt.

    ``parameter_validation`` is off because the engine builds the only two parameters itself.
    """
    return client_config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=pool_size_for(max_pool_connections),
        parameter_validation=False,
    )


async def _sentinel(cache: _LoopCache) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await _close_cache(cache)


async def _close_cache(cache: _LoopCache) -> int:
    """Close the transports, then the clients; returns how many ``@connections`` clients."""
    transports = list(cache.transports.values())
    contexts = list(cache.contexts.items())
    cache.transports.clear()
    cache.clients.clear()
    cache.contexts.clear()
    for transport in transports:
        try:
            await transport.aclose()
        except Exception:  # pragma: no cover - closing must never mask the caller's error
            logger.warning("error while closing a transport", exc_info=True)
    closed = 0
    for key, ctx in contexts:
        try:
            await ctx.__aexit__(None, None, None)
        except Exception:  # pragma: no cover
            logger.warning("error while closing a %s client", key[0], exc_info=True)
        if key[0] == MANAGEMENT_SERVICE:
            closed += 1
    with _lock:
        _counters.closed += closed
    return closed


async def _cached_client(key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    """The client cached under ``key`` on the running loop, created once by ``make()``."""
    cache = _cache()
    client = cache.clients.get(key)
    if client is not None:
        return client
    task = cache.creating.get(key)
    if task is None:
        # Its own task in an empty context: no caller's cancellation or context reaches it.
        task = asyncio.get_running_loop().create_task(
            _create(cache, key, make), context=contextvars.Context()
        )
        # Retrieved here, so a failure whose every waiter was cancelled logs no
        # "exception was never retrieved"; the waiters still see it.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        cache.creating[key] = task
    return await asyncio.shield(task)


async def _create(cache: _LoopCache, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    try:
        if cache.sentinel is None:
            cache.sentinel = _sentinel(cache)
            await cache.sentinel.asend(None)
        ctx = make()
        client = await ctx.__aenter__()
        cache.clients[key] = client
        cache.contexts[key] = ctx
        if key[0] == MANAGEMENT_SERVICE:
            with _lock:
                _counters.created += 1
        logger.debug("created %s client for %s", key[0], key[1])
        return client
    finally:
        cache.creating.pop(key, None)


async def get_management_client(
    endpoint_url: str, *, max_pool_connections: int | None = None
) -> Any:
    """The running loop's cached ``apigatewaymanagementapi`` client for ``endpoint_url``.

    Concurrent callers on one loop share a single creation; one of them being cancelled
    does not disturb the others.
    """
    s = get_settings()
    pool = pool_size_for(max_pool_connections)
    timeouts = (s.connect_timeout_seconds, s.read_timeout_seconds)
    key = (MANAGEMENT_SERVICE, endpoint_url, credentials_key(s), pool, timeouts)
    session = cached_session(s)
    return await _cached_client(
        key,
        lambda: session.client(
            MANAGEMENT_SERVICE, endpoint_url=endpoint_url, config=management_client_config(pool)
        ),
    )


async def get_service_client(
    service: str, endpoint_url: str | None, *, config: AioConfig, config_key: Hashable
) -> Any:
    """The running loop's cached client of ``service`` (provisioning's apigatewayv2, route53).

    ``config_key`` stands for ``config`` in the cache key (configs are not hashable).
    """
    s = get_settings()
    key = (service, endpoint_url or "", credentials_key(s), config_key)
    session = cached_session(s)
    return await _cached_client(
        key, lambda: session.client(service, endpoint_url=endpoint_url, config=config)
    )


async def aclose_clients() -> int:
    """Close the running loop's cached transports and clients now.

    Returns how many ``@connections`` clients were closed.
    """
    cache = _loops.get(asyncio.get_running_loop())
    if cache is None:
        return 0
    return await _close_cache(cache)


def client_stats() -> ClientStats:
    """How many ``@connections`` clients were created and closed in this process so far."""
    try:
        cache = _loops.get(asyncio.get_running_loop())
    except RuntimeError:
        cache = None
    open_here = sum(1 for key in cache.clients if key[0] == MANAGEMENT_SERVICE) if cache else 0
    with _lock:
        return ClientStats(
            created=_counters.created, closed=_counters.closed, open_on_this_loop=open_here
        )
