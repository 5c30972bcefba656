"""An async PostgreSQL path for the gateway routes' compiled statements (opt-in).

Why: Django's database layer is sync, so under ASGI every ORM call of an async view is a
``sync_to_async`` thread hop. Under uvicorn with a load generator those hops were half of a
message's server CPU (docs/deployment.md has the profile), more than the query itself. The
statements of the gateway routes are few and already compiled once (``views/session_loader.py``,
``views/connect_sql.py``), so they can run on an async psycopg connection instead, on the loop,
with no hop at all.

What: for an alias on PostgreSQL with psycopg 3, one pool of async connections per event loop
(``asyncdb_pool.py``: made on demand, no background task), opened from the alias's own
connection parameters (Django's ``get_connection_params()``: host, user, ``OPTIONS``, the
adapters that make timestamps aware, ``prepare_threshold``) and configured as Django configures
its connections (time zone, role, isolation level), in autocommit mode like Django's. Its
limits come from ``OPTIONS["pool"]`` when that is a dict (``max_size``, ``timeout``,
``max_lifetime``), else at most 10 connections. The pools of a loop are closed when the loop
shuts down (the sentinel of ``aws/cache.py``).

When: ``AWS_WS_ASYNC["async_database"]`` is True, and nothing needs Django's own cursor for this
statement. :func:`database` returns None (the caller uses the sync path, in a thread) when:

* the alias is not PostgreSQL with psycopg 3;
* a sync caller is up the stack (``async_to_sync`` from sync code): its thread's connection may
  be inside ``atomic()`` (a statement on another connection would escape the transaction and
  miss its uncommitted rows: ``TestCase``, a project's own transaction) or watched;
* anything watches Django's cursor: an ``execute_wrapper``, ``DEBUG`` or a forced query log
  (``assertNumQueries``, ``CaptureQueriesContext``): they would not see the statement.

Errors come out as Django's (``django.db.IntegrityError``, ``OperationalError``, ...), through
the same error wrapper Django's cursor uses, so callers handle one family on both paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import AsyncToSync
from django.conf import settings
from django.db import connections

from aws_ws_async.asyncdb_pool import DEFAULT_MAX_LIFETIME, ConnectionPool
from aws_ws_async.conf import get_settings

logger = logging.getLogger("aws_ws_async.asyncdb")

#: Connections per loop and alias at most, when ``OPTIONS["pool"]`` gives no ``max_size``.
DEFAULT_MAX_SIZE = 10
#: Seconds to wait for a free connection (``OPTIONS["pool"]["timeout"]`` overrides).
DEFAULT_TIMEOUT = 30.0


def _drivers_present() -> bool:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return True


_DRIVERS = _drivers_present()


def unavailable_reason(using: str) -> str | None:
    """Why the async path can never serve ``using`` (None: it can); checks and docs use it."""
    engine = str(connections.settings[using].get("ENGINE", ""))
    if not engine.startswith("django.db.backends.postgresql"):
        return f"database {using!r} is not PostgreSQL ({engine})"
    if not _DRIVERS:
        return "psycopg 3 is not installed (pip install 'aws-ws-async[fast]')"
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    if not is_psycopg3:
        return "Django uses psycopg2 here: the async path needs psycopg 3"
    return None


def watched(using: str) -> bool:
    """True when Django's own cursor must run the statement: ``DEBUG`` (the query log), a
    sync caller up the stack, or this context's connection being wrapped or logged.

    A sync caller (``async_to_sync`` from sync code: a ``TestCase``, a sync shim, a
    transaction a project opened) runs this request's thread-sensitive work in *its* thread,
    whose connection may be inside ``atomic()`` or watched by ``assertNumQueries``; async code
    cannot see that thread's connection (Django's connections are thread-critical), so the
    statement goes there. Under an ASGI server no sync caller exists.
    """
    if settings.DEBUG or getattr(AsyncToSync.executors, "current", None) is not None:
        return True
    # Only a connection this context already made can be wrapped or logged; asking
    # ``connections[using]`` would create one per request just to learn that it is not.
    wrapper = getattr(connections._connections, using, None)  # type: ignore[attr-defined]
    if wrapper is None:
        return False
    return bool(wrapper.in_atomic_block or wrapper.execute_wrappers or wrapper.queries_logged)


_eligible: dict[str, bool] = {}


def database(using: str) -> AsyncDatabase | None:
    """The async path for ``using`` on the running loop, or None: use Django's (sync) cursor."""
    if not get_settings().async_database:
        return None
    eligible = _eligible.get(using)
    if eligible is None:
        eligible = _eligible[using] = unavailable_reason(using) is None
    if not eligible or watched(using):
        return None
    loop = asyncio.get_running_loop()
    pools = _loops.get(loop)
    if pools is None:
        pools = _loops[loop] = _LoopPools()
    db = pools.databases.get(using)
    if db is None:
        db = pools.databases[using] = AsyncDatabase(using, pools)
    return db


def forget_settings() -> None:
    """Forget which aliases qualify (``DATABASES`` changed: tests' ``override_settings``)."""
    _eligible.clear()


class AsyncDatabase:
    """One alias's pool on one loop; every method takes a connection and gives it back."""

    def __init__(self, alias: str, pools: _LoopPools) -> None:
        self.alias = alias
        #: A private Django wrapper of the alias, never connected: its error wrapper, its
        #: ``ops`` and its connection parameters (and the ``connection`` converters expect).
        self.connection: Any = connections.create_connection(alias)
        self._pools = pools
        self._pool: ConnectionPool | None = None

    async def fetchone(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        async with self.cursor() as cursor:
            await cursor.execute(sql, params)
            row: tuple[Any, ...] | None = await cursor.fetchone()
            return row

    async def fetchall(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self.cursor() as cursor:
            await cursor.execute(sql, params)
            rows: list[tuple[Any, ...]] = await cursor.fetchall()
            return rows

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement (autocommit); the number of rows it changed."""
        async with self.cursor() as cursor:
            await cursor.execute(sql, params)
            return int(cursor.rowcount)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncStatements]:
        """One connection in one transaction: committed at the end, rolled back on error."""
        pool = await self._opened()
        with self.connection.wrap_database_errors:
            async with pool.connection() as conn, conn.transaction():
                yield AsyncStatements(conn, self.connection)

    @contextlib.asynccontextmanager
    async def statements(self) -> AsyncIterator[AsyncStatements]:
        """One connection for several statements, each committed at once (autocommit): one
        checkout from the pool instead of one per statement."""
        pool = await self._opened()
        with self.connection.wrap_database_errors:
            async with pool.connection() as conn:
                yield AsyncStatements(conn, self.connection)

    @contextlib.asynccontextmanager
    async def cursor(self) -> AsyncIterator[Any]:
        """A cursor on a pooled connection (autocommit), Django's errors on failure."""
        pool = await self._opened()
        with self.connection.wrap_database_errors:
            async with pool.connection() as conn, conn.cursor() as cursor:
                yield cursor

    async def _opened(self) -> ConnectionPool:
        pool = self._pool
        if pool is None:
            params, sizes = pool_arguments(self.connection)
            pool = self._pool = ConnectionPool(
                params, configure=self._configure, name=f"aws_ws_async.{self.alias}", **sizes
            )
            self._pools.opened.append(pool)
            logger.debug("opened the async pool of %r (%s)", self.alias, sizes)
            # After the pool is set: concurrent first callers share it (no await before).
            await self._pools.watch_shutdown()
        return pool

    async def _configure(self, conn: Any) -> None:
        """What Django's ``_configure_connection`` does for its own connections."""
        from psycopg import IsolationLevel, sql

        wrapper = self.connection
        timezone_name = wrapper.timezone_name
        options = wrapper.settings_dict["OPTIONS"]
        async with conn.cursor() as cursor:
            if timezone_name and conn.info.parameter_status("TimeZone") != timezone_name:
                await cursor.execute(wrapper.ops.set_time_zone_sql(), [timezone_name])
            if role := options.get("assume_role"):
                await cursor.execute(sql.SQL("SET ROLE {}").format(sql.Literal(role)))
        if "isolation_level" in options:
            await conn.set_isolation_level(IsolationLevel(options["isolation_level"]))


class AsyncStatements:
    """Statements on one checked-out connection (of a transaction, or autocommitted)."""

    def __init__(self, conn: Any, wrapper: Any) -> None:
        self._conn = conn
        self._wrapper = wrapper

    async def fetchone(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        with self._wrapper.wrap_database_errors:
            async with self._conn.cursor() as cursor:
                await cursor.execute(sql, params)
                row: tuple[Any, ...] | None = await cursor.fetchone()
                return row

    async def fetchall(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._wrapper.wrap_database_errors:
            async with self._conn.cursor() as cursor:
                await cursor.execute(sql, params)
                rows: list[tuple[Any, ...]] = await cursor.fetchall()
                return rows

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        with self._wrapper.wrap_database_errors:
            async with self._conn.cursor() as cursor:
                await cursor.execute(sql, params)
                return int(cursor.rowcount)


def pool_arguments(wrapper: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(connect kwargs, pool sizes)`` for the alias of ``wrapper``: Django's own parameters
    with async cursors, autocommit, and the sizes of ``OPTIONS["pool"]`` when it gives them."""
    import psycopg

    params = dict(wrapper.get_connection_params())
    server_side = wrapper.settings_dict["OPTIONS"].get("server_side_binding") is True
    params["cursor_factory"] = psycopg.AsyncCursor if server_side else psycopg.AsyncClientCursor
    params["autocommit"] = True
    configured = wrapper.settings_dict["OPTIONS"].get("pool")
    options = configured if isinstance(configured, dict) else {}
    sizes = {
        "max_size": max(int(options.get("max_size") or DEFAULT_MAX_SIZE), 1),
        "timeout": float(options.get("timeout", DEFAULT_TIMEOUT)),
        "max_lifetime": float(options.get("max_lifetime", DEFAULT_MAX_LIFETIME)),
    }
    return params, sizes


# --- one loop's pools, closed when the loop shuts down ---------------------------------------


@dataclass
class _LoopPools:
    databases: dict[str, AsyncDatabase] = field(default_factory=dict)
    opened: list[Any] = field(default_factory=list)
    sentinel: AsyncGenerator[None, None] | None = None

    async def watch_shutdown(self) -> None:
        """Park the sentinel generator whose ``finally`` closes these pools: ``asyncio.run``,
        uvicorn and pytest-asyncio run ``loop.shutdown_asyncgens()`` before closing a loop."""
        if self.sentinel is None:
            self.sentinel = _sentinel(self)
            await self.sentinel.asend(None)

    async def aclose(self) -> int:
        pools, self.opened = self.opened, []
        for db in self.databases.values():
            db._pool = None
        self.databases.clear()
        for pool in pools:
            try:
                await pool.aclose()
            except Exception:  # pragma: no cover - closing must never mask the caller's error
                logger.warning("error while closing an async pool", exc_info=True)
        return len(pools)


async def _sentinel(pools: _LoopPools) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await pools.aclose()


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPools] = (
    weakref.WeakKeyDictionary()
)


async def aclose_pools() -> int:
    """Close the running loop's pools now (tests, a server's shutdown hook); how many."""
    pools = _loops.pop(asyncio.get_running_loop(), None)
    if pools is None:
        return 0
    count = len(pools.opened)
    sentinel, pools.sentinel = pools.sentinel, None
    if sentinel is not None:
        await sentinel.aclose()  # its ``finally`` closes them
    else:
        await pools.aclose()
    return count
