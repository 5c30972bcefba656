"""AWS session, credentials, region and endpoint resolution (the edge everything AWS goes through).

Resolution order, the same for every service:

* region: ``AWS_WS_ASYNC["region_name"]`` (or the legacy ``AWS_GATEWAY_REGION_NAME`` /
  ``AWS_REGION_NAME``), else the standard AWS chain (``AWS_DEFAULT_REGION``, the profile's
  config). A profile never discards an explicit region (the predecessor's defect).
* credentials: an explicit key pair if both halves are set, else the named profile, else the
  default credential chain (environment, shared files, container/instance roles).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import weakref
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig

from aws_ws_async.conf import AppSettings, get_settings
from aws_ws_async.exceptions import ImproperlyConfiguredGateway

DEFAULT_MANAGEMENT_ENDPOINT = "https://{api_id}.execute-api.{region}.amazonaws.com/{stage}"


def make_session(app_settings: AppSettings | None = None) -> aioboto3.Session:
    """A new aioboto3 session honouring our settings (cheap; clients are the costly part)."""
    s = app_settings or get_settings()
    kwargs: dict[str, Any] = {}
    if s.region_name:
        kwargs["region_name"] = s.region_name
    if s.access_key_id and s.secret_access_key:
        kwargs["aws_access_key_id"] = s.access_key_id
        kwargs["aws_secret_access_key"] = s.secret_access_key
        if s.session_token:
            kwargs["aws_session_token"] = s.session_token
    elif s.profile_name:
        kwargs["profile_name"] = s.profile_name
    return aioboto3.Session(**kwargs)


def resolve_region(session: aioboto3.Session | None = None) -> str:
    """The effective region, or a clear error naming the settings that would provide one."""
    region = (session or make_session()).region_name
    if not region:
        raise ImproperlyConfiguredGateway(
            "No AWS region: set AWS_WS_ASYNC['region_name'] (or AWS_DEFAULT_REGION, or a "
            "region in your AWS profile)."
        )
    return str(region)


def management_endpoint(api_id: str, stage: str, region: str | None = None) -> str:
    """The ``@connections`` endpoint URL for one API and stage (no trailing slash)."""
    if not api_id:
        raise ImproperlyConfiguredGateway("The gateway has no api_id: provision it first.")
    if not stage:
        raise ImproperlyConfiguredGateway("The gateway has no stage_name.")
    template = get_settings().management_endpoint_url or DEFAULT_MANAGEMENT_ENDPOINT
    if "{region}" in template and region is None:
        region = resolve_region()
    return template.format(api_id=api_id, region=region or "", stage=stage).rstrip("/")


def client_config(**overrides: Any) -> AioConfig:
    """Client configuration from our settings; ``overrides`` win (e.g. ``retries``)."""
    s = get_settings()
    options: dict[str, Any] = {
        "connect_timeout": s.connect_timeout_seconds,
        "read_timeout": s.read_timeout_seconds,
        "retries": {"mode": "standard", "max_attempts": 3},
    }
    options.update(overrides)
    return AioConfig(**options)


# ---------------------------------------------------------------------------------------------
# Client cache: one apigatewaymanagementapi client per (event loop, endpoint, credentials).
# ---------------------------------------------------------------------------------------------
#
# aiobotocore clients are expensive to create (milliseconds on a warm session, far more on a
# cold one) and bound to the loop they were created on. We therefore keep one per loop, keyed by
# endpoint and credentials, and close them when their loop shuts down.
#
# Detecting loop shutdown: ``asyncio.run`` (and asgiref's ``async_to_sync``, pytest-asyncio,
# uvicorn/daphne via ``asyncio.run``) call ``loop.shutdown_asyncgens()`` before closing the loop,
# which ``aclose()``s every async generator the loop has seen. Each loop with cached clients gets
# one tiny "sentinel" async generator, parked at its ``yield``; its ``finally`` closes that loop's
# clients while the loop can still run their cleanup. The cache maps loops weakly, so a loop that
# is closed some other way only leaves its entry to the garbage collector.

logger = logging.getLogger("aws_ws_async.aws")

MANAGEMENT_SERVICE = "apigatewaymanagementapi"


@dataclass
class _LoopClients:
    """The clients of one loop, plus the sentinel generator that closes them at shutdown."""

    clients: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    contexts: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    pending: dict[tuple[Any, ...], asyncio.Future[Any]] = field(default_factory=dict)
    sentinel: AsyncGenerator[None, None] | None = None


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
    weakref.WeakKeyDictionary()
)
_sessions: dict[tuple[Any, ...], aioboto3.Session] = {}
_sessions_lock = threading.Lock()
_counter_lock = threading.Lock()


class _Counters:
    created = 0
    closed = 0


_counters = _Counters()


@dataclass(frozen=True)
class ClientStats:
    """Process-wide counters of management clients; tests and benchmarks read these."""

    created: int
    closed: int
    open_on_this_loop: int


def credentials_key(app_settings: AppSettings | None = None) -> tuple[Any, ...]:
    """What distinguishes one set of credentials from another, without keeping secrets around."""
    s = app_settings or get_settings()

    def digest(value: str | None) -> str:
        return hashlib.sha256(value.encode()).hexdigest()[:16] if value else ""

    return (
        s.region_name or "",
        s.profile_name or "",
        s.access_key_id or "",
        digest(s.secret_access_key),
        digest(s.session_token),
    )


def cached_session(app_settings: AppSettings | None = None) -> aioboto3.Session:
    """One aioboto3 session per credentials key, shared by every loop (sessions are loop-free).

    Reusing the session keeps botocore's loaded service models warm, which is what makes a new
    client cost milliseconds instead of a hundred or more.
    """
    key = credentials_key(app_settings)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = make_session(app_settings)
            _sessions[key] = session
        return session


def management_client_config(max_pool_connections: int | None = None) -> AioConfig:
    """Config of a delivery client: our engine owns retries, so botocore makes one attempt.

    ``parameter_validation`` is off because the engine builds the only two parameters itself.
    """
    s = get_settings()
    return client_config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=max_pool_connections or s.max_concurrency,
        parameter_validation=False,
    )


async def _sentinel(state: _LoopClients) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await _close_state(state)


async def _close_state(state: _LoopClients) -> None:
    contexts = list(state.contexts.values())
    state.clients.clear()
    state.contexts.clear()
    for ctx in contexts:
        try:
            await ctx.__aexit__(None, None, None)
        except Exception:  # pragma: no cover - closing must never mask the caller's error
            logger.warning("error while closing an apigatewaymanagementapi client", exc_info=True)
        with _counter_lock:
            _counters.closed += 1


async def get_management_client(
    endpoint_url: str, *, max_pool_connections: int | None = None
) -> Any:
    """The cached ``apigatewaymanagementapi`` client of the running loop for ``endpoint_url``.

    Concurrent callers on one loop wait for a single creation instead of racing to make several.
    """
    loop = asyncio.get_running_loop()
    s = get_settings()
    pool = max_pool_connections or s.max_concurrency
    timeouts = (s.connect_timeout_seconds, s.read_timeout_seconds)
    key = (endpoint_url, credentials_key(s), pool, timeouts)
    state = _loops.get(loop)
    if state is None:
        state = _LoopClients()
        _loops[loop] = state
    client = state.clients.get(key)
    if client is not None:
        return client
    pending = state.pending.get(key)
    if pending is not None:
        return await asyncio.shield(pending)
    future: asyncio.Future[Any] = loop.create_future()
    state.pending[key] = future
    try:
        if state.sentinel is None:
            state.sentinel = _sentinel(state)
            await state.sentinel.asend(None)
        ctx = cached_session(s).client(
            MANAGEMENT_SERVICE,
            endpoint_url=endpoint_url,
            config=management_client_config(pool),
        )
        client = await ctx.__aenter__()
        with _counter_lock:
            _counters.created += 1
        state.clients[key] = client
        state.contexts[key] = ctx
        future.set_result(client)
        logger.debug("created apigatewaymanagementapi client for %s", endpoint_url)
        return client
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # mark retrieved: waiters re-raise it themselves
        raise
    finally:
        state.pending.pop(key, None)


async def aclose_clients() -> int:
    """Close every cached client of the running loop now; returns how many were closed."""
    state = _loops.get(asyncio.get_running_loop())
    if state is None:
        return 0
    count = len(state.contexts)
    await _close_state(state)
    return count


def client_stats() -> ClientStats:
    """How many management clients were created and closed in this process so far."""
    try:
        state = _loops.get(asyncio.get_running_loop())
    except RuntimeError:
        state = None
    with _counter_lock:
        return ClientStats(
            created=_counters.created,
            closed=_counters.closed,
            open_on_this_loop=len(state.clients) if state else 0,
        )
