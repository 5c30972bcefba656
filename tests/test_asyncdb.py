"""The async PostgreSQL path (``aws_ws_async.asyncdb``): when it serves, what it returns, and
that it steps aside whenever Django's own cursor must run the statement.

The PostgreSQL tests are transactional: the pool's connections are not the test's, so they see
only committed rows (which is also why the path refuses to serve inside ``atomic()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import IntegrityError, connection, connections, transaction

from aws_ws_async import asyncdb
from aws_ws_async.models import WebSocketSession

TABLE = WebSocketSession._meta.db_table


@pytest.fixture
def async_db_on(settings: Any) -> Any:
    settings.AWS_WS_ASYNC = {**getattr(settings, "AWS_WS_ASYNC", {}), "async_database": True}
    return settings


@pytest.fixture
def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the async path is PostgreSQL only (AWS_WS_ASYNC_TEST_DB=postgres)")


def test_off_by_default_and_never_for_sqlite(settings: Any) -> None:
    async def probe() -> asyncdb.AsyncDatabase | None:
        return asyncdb.database("default")

    assert asyncio.run(probe()) is None  # the setting is off
    settings.AWS_WS_ASYNC = {"async_database": True}
    if connection.vendor == "sqlite":
        assert asyncio.run(probe()) is None
        assert "not PostgreSQL" in str(asyncdb.unavailable_reason("default"))
    else:
        assert asyncdb.unavailable_reason("default") is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres_only", "async_db_on")
async def test_statements_round_trip_with_djangos_errors() -> None:
    db = asyncdb.database("default")
    assert db is not None
    assert await db.fetchone("SELECT %s::int + 1, now() IS NOT NULL", [41]) == (42, True)
    # Timestamps come back aware, in the connection's time zone Django configures (UTC).
    (now,) = await db.fetchone("SELECT now()", []) or (None,)
    assert now is not None
    assert now.utcoffset().total_seconds() == 0
    assert await db.execute(f"UPDATE {TABLE} SET connected = false WHERE id = -1", []) == 0
    rows = await db.fetchall("SELECT generate_series(1, %s)", [3])
    assert rows == [(1,), (2,), (3,)]
    # One transaction: an error rolls back what came before it, and comes out as Django's.
    await db.execute("CREATE TABLE IF NOT EXISTS asyncdb_probe (k int PRIMARY KEY)", [])
    try:
        inserted: list[int] = []

        async def insert_twice() -> None:
            async with db.transaction() as tx:
                inserted.append(await tx.execute("INSERT INTO asyncdb_probe VALUES (1)", []))
                await tx.execute("INSERT INTO asyncdb_probe VALUES (1)", [])

        with pytest.raises(IntegrityError):
            await insert_twice()
        assert inserted == [1]
        assert await db.fetchone("SELECT count(*) FROM asyncdb_probe", []) == (0,)
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO asyncdb_probe VALUES (2)", [])
            assert await tx.fetchone("SELECT k FROM asyncdb_probe", []) == (2,)
        assert await db.fetchone("SELECT count(*) FROM asyncdb_probe", []) == (1,)
    finally:
        await db.execute("DROP TABLE asyncdb_probe", [])


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres_only", "async_db_on")
async def test_steps_aside_when_djangos_cursor_must_run_it(settings: Any) -> None:
    assert asyncdb.database("default") is not None
    settings.DEBUG = True  # the query log would miss it
    assert asyncdb.database("default") is None
    settings.DEBUG = False

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        return execute(sql, params, many, context)

    async def steps_aside() -> bool:
        return asyncdb.database("default") is None

    def from_sync_code(atomic: bool) -> bool:
        # A sync caller (a TestCase, a sync shim) may hold its connection inside atomic():
        # the statement must join that transaction, so the async path steps aside, atomic or
        # not (async code cannot see that thread's connection).
        with transaction.atomic() if atomic else contextlib.nullcontext():
            return async_to_sync(steps_aside)()

    assert await sync_to_async(from_sync_code)(True)
    assert await sync_to_async(from_sync_code)(False)
    assert not await steps_aside()
    with connections["default"].execute_wrapper(wrapper):
        assert asyncdb.database("default") is None
    assert asyncdb.database("default") is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres_only", "async_db_on")
def test_a_loops_pools_close_when_the_loop_shuts_down() -> None:
    opened: list[Any] = []

    async def use() -> None:
        db = asyncdb.database("default")
        assert db is not None
        assert await db.fetchone("SELECT 1", []) == (1,)
        opened.append(db._pool)

    # A loop of its own in a thread, as a server's would be; asyncio.run shuts it down.
    worker = threading.Thread(target=asyncio.run, args=(use(),))
    worker.start()
    worker.join(30)
    [pool] = opened
    assert pool.closed


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres_only", "async_db_on")
async def test_pool_sizes_follow_the_alias_pool_options(settings: Any) -> None:
    db = asyncdb.database("default")
    assert db is not None
    params, sizes = asyncdb.pool_arguments(db.connection)
    assert params["autocommit"] is True
    assert params["dbname"] == connections["default"].settings_dict["NAME"]
    assert sizes == {
        "max_size": asyncdb.DEFAULT_MAX_SIZE,
        "timeout": asyncdb.DEFAULT_TIMEOUT,
        "max_lifetime": asyncdb.DEFAULT_MAX_LIFETIME,
    }
    db.connection.settings_dict["OPTIONS"] = {"pool": {"min_size": 3, "max_size": 2}}
    try:
        assert asyncdb.pool_arguments(db.connection)[1]["max_size"] == 2
    finally:
        db.connection.settings_dict["OPTIONS"] = {}


class SessionsOnOther:
    """Routes the package's sessions (reads and writes) to the ``other`` database."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return "other" if model is WebSocketSession else None

    db_for_write = db_for_read


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
@pytest.mark.usefixtures("postgres_only", "async_db_on")
async def test_the_lookup_and_disconnect_follow_the_routers(settings: Any) -> None:
    from datetime import UTC, datetime

    from django.contrib.auth import get_user_model

    from aws_ws_async.models import ApiGateway
    from aws_ws_async.views.session_loader import aload_and_disconnect, aload_session

    def rows_on_other() -> None:
        user = (
            get_user_model()
            ._default_manager.db_manager("other")
            .create_user(email="routed@example.com", password="pw-routed-1")
        )
        gateway = ApiGateway.objects.using("other").create(api_id="routedapi", api_name="r")
        WebSocketSession.objects.using("other").create(
            connection_id="routed0000001=", user=user, api_gateway=gateway, channel_name="r"
        )
        connections["other"].close()  # this worker thread's: the test database is dropped

    await sync_to_async(rows_on_other)()
    settings.DATABASE_ROUTERS = [f"{__name__}.SessionsOnOther"]
    session = await aload_session(WebSocketSession, "routedapi", "routed0000001=", False)
    assert session is not None
    assert session._state.db == "other"
    assert session.user.email == "routed@example.com"
    assert session.api_gateway is not None
    assert session.api_gateway.api_id == "routedapi"
    when = datetime(2026, 12, 1, tzinfo=UTC)
    closed, changed = await aload_and_disconnect(
        WebSocketSession, "routedapi", "routed0000001=", False, when
    )
    assert closed is not None
    assert changed == 1

    def row_on_other() -> WebSocketSession:
        try:
            return WebSocketSession.objects.using("other").get(connection_id="routed0000001=")
        finally:
            connections["other"].close()

    row = await sync_to_async(row_on_other)()
    assert (row.connected, row.disconnected_at) == (False, when)
    # Nothing of it on the default database: the router, not the default, chose the pool.
    settings.DATABASE_ROUTERS = []
    assert await aload_session(WebSocketSession, "routedapi", "routed0000001=", False) is None


def test_check_w007_names_each_database_the_path_cannot_serve(settings: Any) -> None:
    from aws_ws_async.checks import check_async_database

    assert check_async_database() == []  # off: nothing to say
    settings.AWS_WS_ASYNC = {**getattr(settings, "AWS_WS_ASYNC", {}), "async_database": True}
    messages = check_async_database()
    if connection.vendor == "sqlite":
        assert [m.id for m in messages] == ["aws_ws_async.W007", "aws_ws_async.W007"]
        assert "'default'" in messages[0].msg
        assert "'other'" in messages[1].msg
        assert "not PostgreSQL" in messages[0].msg
    else:
        assert messages == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgres_only", "async_db_on")
async def test_the_pool_reuses_bounds_and_drops_connections() -> None:
    from django.db import OperationalError

    from aws_ws_async.asyncdb_pool import ConnectionPool

    db = asyncdb.database("default")
    assert db is not None
    params, _sizes = asyncdb.pool_arguments(db.connection)
    pool = ConnectionPool(params, max_size=1, timeout=0.2, configure=db._configure, name="t")
    try:
        for _ in range(3):  # one after another: one connection, reused
            async with pool.connection() as conn, conn.cursor() as cursor:
                await cursor.execute("SELECT 1")
        assert pool.opened == 1
        # The one slot taken (max_size 1): the next caller waits at most `timeout`, then a clear
        # error, not a hang.
        async with pool.connection():
            with pytest.raises(OperationalError, match=r"no connection free within 0\.2 s"):
                async with pool.connection():
                    pass
        # A statement cancelled mid-flight: psycopg cancels it on the server and the
        # connection is idle again, so it is reused.
        task = asyncio.ensure_future(_sleep_in(pool))
        await asyncio.sleep(0.3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        async with pool.connection() as conn:
            assert await (await conn.execute("SELECT 7")).fetchone() == (7,)
        # One given back inside a transaction is not idle: closed, and the next one is new.
        async with pool.connection() as conn:
            await conn.execute("BEGIN")
        assert conn.closed
        async with pool.connection() as conn:
            assert await (await conn.execute("SELECT 8")).fetchone() == (8,)
        assert pool.opened == 2
    finally:
        await pool.aclose()
    with pytest.raises(OperationalError, match="closed"):
        async with pool.connection():
            pass


async def _sleep_in(pool: Any) -> None:
    async with pool.connection() as conn, conn.cursor() as cursor:
        await cursor.execute("SELECT pg_sleep(5)")
