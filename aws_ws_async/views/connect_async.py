"""``$connect``'s compiled statements on the async PostgreSQL path (``asyncdb``): no thread hop.

With ``AWS_WS_ASYNC["async_database"]`` on, the token read, the browser session read, the rate
limit's INSERT and COUNT, the spend and the session + subscription INSERTs run on the loop,
each the very statement the sync path compiled (``connect_plans``), bound the same way and
turned into the same instances. The checks between them (channel policy, permissions, the
hooks) are awaited on the loop as ever, so the order of the checks and statements is the sync
path's, and the session with its subscription is one transaction (a duplicate connection id
rolls it back and gives the token back, 409).

The sync path runs instead (``database_for`` gives None) whenever this path could differ: the
async path is off or unavailable (``asyncdb.database``: not PostgreSQL, a watched cursor,
``DEBUG``, a sync caller up the stack, which also covers an open ``atomic()``), the statements
are routed to more than one database, the session engine is not ``db`` exactly, a statement is
not compiled yet (the first request of a process compiles them on the sync path) or compiles
only to the ORM, or a ``pre_save``/``post_save`` receiver listens to a model it inserts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.db import IntegrityError, router
from django.db.models import Model
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from aws_ws_async import asyncdb
from aws_ws_async.hashing import session_key_hashes
from aws_ws_async.models import (
    ChannelSubscription,
    ConnectionRateLimit,
    WebSocketSession,
    WebSocketToken,
)
from aws_ws_async.views import connect_plans, reasons
from aws_ws_async.views.connect_db import TokenRead
from aws_ws_async.views.connect_sql import convert_row, insert_params, insert_plan, inserted


def _compiled(using: str, model: type[WebSocketSession], channel: str, hashes: int) -> bool:
    """Every statement this request may run is compiled (not the ORM's) and nobody listens
    to the saves of the rows it inserts."""
    inserts: list[type[Model]] = [ConnectionRateLimit, model]
    if channel:
        inserts.append(ChannelSubscription)
    for inserted_model in inserts:
        if insert_plan(inserted_model, using) is None:
            return False
        if pre_save.has_listeners(inserted_model) or post_save.has_listeners(inserted_model):
            return False
    return (
        connect_plans.token_plan(using, channel, hashes, build=False) is not None
        and connect_plans._sessions.get(using) is not None
        and connect_plans._updates.get((using, "spend")) is not None
        and connect_plans._updates.get((using, "unspend")) is not None
    )


def database_for(
    model: type[WebSocketSession], channel: str, session_key: str
) -> asyncdb.AsyncDatabase | None:
    """The async database for this ``$connect``, or None: the sync path runs it."""
    using = router.db_for_read(WebSocketToken)
    if settings.SESSION_ENGINE != connect_plans.DB_SESSION_ENGINE:
        return None
    aliases = {
        router.db_for_write(WebSocketToken),
        router.db_for_read(ConnectionRateLimit),
        router.db_for_write(ConnectionRateLimit),
        router.db_for_read(DbSessionStore.get_model_class()),
        router.db_for_write(model),
    }
    if aliases != {using}:
        return None
    db = asyncdb.database(using)
    if db is None:
        return None
    hashes = len(set(session_key_hashes(session_key)))
    return db if _compiled(using, model, channel, hashes) else None


async def aread_token(
    db: asyncdb.AsyncDatabase,
    raw: str,
    session_key: str,
    channel: str,
    rate: tuple[str | None, int, timedelta] | None,
) -> TokenRead:
    """``connect_db.read_token`` on the loop (without its ``finish``: the checks after the
    rate limit are awaited by the view)."""
    args = connect_plans.token_args(raw, session_key)
    plan = connect_plans.token_plan(db.alias, channel, len(args[1]), build=False) if args else None
    if args is None or plan is None:
        return TokenRead(None, False, None)
    conn = db.connection
    statement = plan.statement
    values = connect_plans.token_values(args, channel, conn)
    async with db.statements() as st:  # one pool checkout for the four statements
        rows = await st.fetchall(statement.sql, statement.bind(values))
        if not rows:
            return TokenRead(None, False, None)
        token: WebSocketToken = plan.instance(convert_row(list(rows[0]), plan.converters, conn))
        if not token.user.is_active:
            return TokenRead(token, False, None)
        if not token.session_matches(await _session_data(db, st, token, session_key)):
            return TokenRead(token, False, None)
        if rate is None:
            return TokenRead(token, True, None)
        return TokenRead(token, True, await _record_and_check(db, st, token.user, *rate))


async def _session_data(
    db: asyncdb.AsyncDatabase, st: asyncdb.AsyncStatements, token: WebSocketToken, key: str
) -> Any:
    store = token._session_store(key)
    if store.session_key is None:  # too short: load() finds no row either
        return {}
    compiled = connect_plans._sessions.get(db.alias)
    assert compiled is not None  # checked by database_for
    plan, data = compiled
    statement = plan.statement
    values = connect_plans.session_values(store, db.connection)
    rows = await st.fetchall(statement.sql, statement.bind(values))
    if not rows:
        return {}
    return store.decode(convert_row(list(rows[0]), plan.converters, db.connection)[data])


async def _record_and_check(
    db: asyncdb.AsyncDatabase,
    st: asyncdb.AsyncStatements,
    user: Any,
    bucket: str | None,
    attempts: int,
    window: timedelta,
) -> tuple[bool, ConnectionRateLimit]:
    """``ConnectionRateLimit.record_and_check``: INSERT the attempt, then COUNT the window."""
    user_id = getattr(user, "pk", None)
    attempt = ConnectionRateLimit(
        ip_address=bucket, user=user if user_id else None, successful=True
    )
    compiled = insert_params(attempt, db.alias, db.connection)
    assert compiled is not None  # checked by database_for
    plan, params = compiled
    returned = await st.fetchone(plan.sql, params)
    assert returned is not None
    inserted(attempt, db.alias, returned[0])
    by_ip, by_user = 0, 0
    if bucket or user_id:
        key = (db.alias, bool(bucket), bool(user_id))
        counts = connect_plans._counts.get(key)
        if counts is None:  # not compiled yet on this process: the sync path compiles it
            by_ip, by_user = await sync_to_async(connect_plans.window_counts)(
                bucket, user_id, window
            )
        else:
            statement, converters = counts
            since = timezone.now() - window
            values = connect_plans.count_values(bucket, user_id, since, db.connection)
            row = await st.fetchone(statement.sql, statement.bind(values))
            assert row is not None
            converted = convert_row(list(row), converters, db.connection)
            by_ip, by_user = connect_plans.counted(converted, bucket, user_id)
    return by_ip <= attempts and by_user <= attempts, attempt


async def aspend_and_insert(
    db: asyncdb.AsyncDatabase, token: WebSocketToken | None, row: WebSocketSession
) -> str | None:
    """``connect_db.spend_and_insert`` on the loop; None when the sync path must run it (the
    row is routed elsewhere, or will not go through the compiled INSERT)."""
    using, conn = db.alias, db.connection
    if router.db_for_write(type(row), instance=row) != using:
        return None
    compiled = insert_params(row, using, conn)
    spend = connect_plans._updates.get((using, "spend"))
    unspend = connect_plans._updates.get((using, "unspend"))
    if compiled is None or spend is None or unspend is None:
        return None
    if token is not None:
        now = timezone.now()
        values = connect_plans.update_values(token, now, conn)
        if await db.execute(spend.sql, spend.bind(values)) != 1:
            return reasons.TOKEN_SPENT
        token.used, token.used_at = True, now
    plan, params = compiled
    try:
        if row.channel_name:  # the session and its first subscription together, or neither
            async with db.transaction() as tx:
                returned = await tx.fetchone(plan.sql, params)
                assert returned is not None
                inserted(row, using, returned[0])
                subscription = ChannelSubscription(
                    session=row, channel_name=row.channel_name, subscribed_at=row.connected_at
                )
                sub = insert_params(subscription, using, conn)
                assert sub is not None  # checked by database_for
                returned = await tx.fetchone(sub[0].sql, sub[1])
                assert returned is not None
                inserted(subscription, using, returned[0])
        else:
            returned = await db.fetchone(plan.sql, params)
            assert returned is not None
            inserted(row, using, returned[0])
    except IntegrityError:
        if token is not None and token.used_at is not None:
            values = connect_plans.update_values(token, token.used_at, conn)
            if await db.execute(unspend.sql, unspend.bind(values)) == 1:
                token.used, token.used_at = False, None
        return reasons.DUPLICATE
    return ""
