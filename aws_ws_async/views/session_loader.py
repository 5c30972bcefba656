"""The message route's one query, compiled once per model and database instead of per request.

Every message and ``$disconnect`` loads its session joined with the user and the gateway. Under
a real server with a load generator, building and compiling that SQL through the ORM was the
largest single cost of a message once the middleware was out of the way (over a third of the
samples: the three-table join has about sixty columns, and Django caches nothing of it).

``load_session`` builds the very queryset the view used to run (``select_related`` of user and
gateway, the same filter, ``.first()``'s ordering and limit), compiles it once with sentinel
values for the two parameters, and keeps the SQL, the parameter positions, the column layout,
Django's own related-object populators and the converters. A request then substitutes its
connection id and API id, executes through Django's cursor (so query logging, execute wrappers
and ``DEBUG`` query capture see it as before) and builds the instances with ``Model.from_db``
exactly as ``ModelIterable`` does. Same SQL, same one query, same objects, same database
(``router.db_for_read``); anything unexpected at compile time falls back to the ORM.

``mark_disconnected`` does the same for ``$disconnect``'s conditional UPDATE (connected rows
only; ``router.db_for_write``): compiled once with sentinel values, then the request's primary
key and time, prepared by their fields for the backend, take their places.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections, router, transaction
from django.db.models import Q
from django.db.models.query import get_related_populators
from django.db.models.sql import UpdateQuery

from aws_ws_async import asyncdb
from aws_ws_async.models import DisconnectReason, WebSocketSession

_API = "\x00aws-ws-async-api-id\x00"
_CID = "\x00aws-ws-async-connection-id\x00"


@dataclass(frozen=True)
class _Plan:
    model: type[WebSocketSession]
    sql: str
    params: tuple[Any, ...]
    api_positions: tuple[int, ...]
    cid_positions: tuple[int, ...]
    start: int
    end: int
    init_list: tuple[str, ...]
    populators: tuple[Any, ...]
    converters: tuple[tuple[int, tuple[list[Any], Any]], ...]


_plans: dict[tuple[type, str, bool], _Plan | None] = {}


def session_queryset(
    model: type[WebSocketSession], api_id: str, connection_id: str, pinned: bool
) -> Any:
    """The ORM form of the lookup (also the fallback): connected, this id, this gateway."""
    gateway_filter = Q(api_gateway__api_id=api_id)
    if pinned:
        gateway_filter |= Q(api_gateway__isnull=True)
    return model.objects.select_related("user", "api_gateway").filter(
        gateway_filter, connection_id=connection_id, connected=True
    )


#: Django 6.1's fetch modes change how instances are built (``fetch_mode`` passed through the
#: populators and ``from_db``): there the ORM builds them, until this module learns that shape.
_FETCH_MODES = "fetch_mode" in inspect.signature(get_related_populators).parameters


def _compile(model: type[WebSocketSession], using: str, pinned: bool) -> _Plan | None:
    if _FETCH_MODES:
        return None
    queryset = session_queryset(model, _API, _CID, pinned).using(using)
    if not queryset.ordered:  # what .first() adds
        queryset = queryset.order_by("pk")
    queryset = queryset[:1]
    compiler = queryset.query.get_compiler(using=using)
    sql, params = compiler.as_sql()
    params = tuple(params)
    api_positions = tuple(i for i, p in enumerate(params) if p == _API)
    cid_positions = tuple(i for i, p in enumerate(params) if p == _CID)
    if not api_positions or len(cid_positions) != 1 or compiler.annotation_col_map:
        return None  # not the shape we know: the ORM handles it
    klass_info = compiler.klass_info
    select = compiler.select
    if klass_info is None or klass_info["model"] is not model:
        return None
    fields = klass_info["select_fields"]
    start, end = fields[0], fields[-1] + 1
    columns = [s[0] for s in select[0 : compiler.col_count]]
    if compiler.has_composite_fields(columns):
        return None
    return _Plan(
        model=model,
        sql=sql,
        params=params,
        api_positions=api_positions,
        cid_positions=cid_positions,
        start=start,
        end=end,
        init_list=tuple(f[0].target.attname for f in select[start:end]),
        populators=tuple(get_related_populators(klass_info, select, using)),  # type: ignore[call-arg]
        converters=tuple(compiler.get_converters(columns).items()),
    )


def _plan(model: type[WebSocketSession], using: str, pinned: bool) -> _Plan | None:
    key = (model, using, pinned)
    if key not in _plans:
        _plans[key] = _compile(model, using, pinned)
    return _plans[key]


def _params(plan: _Plan, api_id: str, connection_id: str) -> list[Any]:
    params = list(plan.params)
    for i in plan.api_positions:
        params[i] = api_id
    for i in plan.cid_positions:
        params[i] = connection_id
    return params


def _build(plan: _Plan, fetched: Any, using: str, connection: Any) -> WebSocketSession | None:
    """The instances from the row, as ``ModelIterable`` builds them."""
    if fetched is None:
        return None
    row = list(fetched)
    for position, (converters, expression) in plan.converters:
        value = row[position]
        for converter in converters:
            value = converter(value, expression, connection)
        row[position] = value
    session = plan.model.from_db(using, list(plan.init_list), row[plan.start : plan.end])
    for populator in plan.populators:
        populator.populate(row, session)
    return session


def load_session(
    model: type[WebSocketSession], api_id: str, connection_id: str, pinned: bool
) -> WebSocketSession | None:
    """The connected session (with user and gateway) or None, in one query (sync: in a thread)."""
    using = router.db_for_read(model)
    plan = _plan(model, using, pinned)
    if plan is None:
        result: WebSocketSession | None = (
            session_queryset(model, api_id, connection_id, pinned).using(using).first()
        )
        return result
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, _params(plan, api_id, connection_id))
        fetched = cursor.fetchone()
    return _build(plan, fetched, using, connection)


async def aload_session(
    model: type[WebSocketSession], api_id: str, connection_id: str, pinned: bool
) -> WebSocketSession | None:
    """:func:`load_session` on the loop when the async path serves the database
    (``asyncdb``: no thread hop), else :func:`load_session` in a thread."""
    using = router.db_for_read(model)
    db = asyncdb.database(using)
    plan = _plan(model, using, pinned) if db is not None else None
    if db is None or plan is None:
        return await sync_to_async(load_session)(model, api_id, connection_id, pinned)
    fetched = await db.fetchone(plan.sql, _params(plan, api_id, connection_id))
    return _build(plan, fetched, using, db.connection)


# --- $disconnect's UPDATE, compiled the same way ---------------------------------------------

_PK = -7_394_212_117
_WHEN = datetime(1901, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


@dataclass(frozen=True)
class _UpdatePlan:
    sql: str
    params: tuple[Any, ...]
    pk_positions: tuple[int, ...]
    when_positions: tuple[int, ...]


_update_plans: dict[tuple[type, str], _UpdatePlan | None] = {}


def _disconnect_values(when: datetime) -> dict[str, Any]:
    return {
        "connected": False,
        "disconnected_at": when,
        "disconnect_reason": DisconnectReason.CLIENT,
        "updated_on": when,
    }


def _disconnect_rows(model: type[WebSocketSession], using: str, pk: Any) -> Any:
    return model.objects.using(using).filter(pk=pk, connected=True)


def _compile_disconnect(model: type[WebSocketSession], using: str) -> _UpdatePlan | None:
    if _FETCH_MODES:
        return None
    query = _disconnect_rows(model, using, _PK).query.chain(UpdateQuery)
    query.add_update_values(_disconnect_values(_WHEN))
    sql, params = query.get_compiler(using).as_sql()
    params = tuple(params)
    connection = connections[using]
    when = model._meta.get_field("updated_on").get_db_prep_save(_WHEN, connection)
    pk = model._meta.pk.get_db_prep_value(_PK, connection)
    pk_positions = tuple(i for i, p in enumerate(params) if p == pk)
    when_positions = tuple(i for i, p in enumerate(params) if p == when)
    if len(pk_positions) != 1 or len(when_positions) != 2 or not sql.startswith("UPDATE"):
        return None  # not the shape we know: the ORM handles it
    return _UpdatePlan(sql, params, pk_positions, when_positions)


def _update_plan(model: type[WebSocketSession], using: str) -> _UpdatePlan | None:
    key = (model, using)
    if key not in _update_plans:
        _update_plans[key] = _compile_disconnect(model, using)
    return _update_plans[key]


def _update_params(
    plan: _UpdatePlan, model: type[WebSocketSession], pk: Any, when: datetime, connection: Any
) -> list[Any]:
    params = list(plan.params)
    prepped_when = model._meta.get_field("updated_on").get_db_prep_save(when, connection)
    for i in plan.when_positions:
        params[i] = prepped_when
    for i in plan.pk_positions:
        params[i] = model._meta.pk.get_db_prep_value(pk, connection)
    return params


def mark_disconnected(model: type[WebSocketSession], pk: Any, when: datetime) -> int:
    """``$disconnect``'s conditional UPDATE (connected rows only), compiled once per model and
    database: the rows it changed, 0 when a concurrent close won (sync: in a thread)."""
    using = router.db_for_write(model)
    plan = _update_plan(model, using)
    if plan is None:
        changed: int = _disconnect_rows(model, using, pk).update(**_disconnect_values(when))
        return changed
    connection = connections[using]
    params = _update_params(plan, model, pk, when, connection)
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(plan.sql, params)
        return int(cursor.rowcount)


def load_and_disconnect(
    model: type[WebSocketSession], api_id: str, connection_id: str, pinned: bool, now: datetime
) -> tuple[WebSocketSession | None, int]:
    """``$disconnect``'s two statements in the caller's one thread hop: the session, then the
    conditional UPDATE whose row count says whether this request closed it (0: a concurrent
    close won). No session: nothing updated."""
    session = load_session(model, api_id, connection_id, pinned)
    if session is None:
        return None, 0
    return session, mark_disconnected(model, session.pk, now)


async def aload_and_disconnect(
    model: type[WebSocketSession], api_id: str, connection_id: str, pinned: bool, now: datetime
) -> tuple[WebSocketSession | None, int]:
    """:func:`load_and_disconnect` on the loop when the async path serves both databases
    (read and write: each statement on its router's alias), else in one thread hop."""
    read, write = router.db_for_read(model), router.db_for_write(model)
    reader, writer = asyncdb.database(read), asyncdb.database(write)
    lookup = _plan(model, read, pinned) if reader is not None else None
    update = _update_plan(model, write) if writer is not None else None
    if reader is None or writer is None or lookup is None or update is None:
        return await sync_to_async(load_and_disconnect)(model, api_id, connection_id, pinned, now)
    async with contextlib.AsyncExitStack() as stack:
        # One alias: both statements on one pooled connection; else each on its own alias.
        reads: asyncdb.AsyncStatements | asyncdb.AsyncDatabase = reader
        writes: asyncdb.AsyncStatements | asyncdb.AsyncDatabase = writer
        if reader is writer:
            reads = writes = await stack.enter_async_context(reader.statements())
        fetched = await reads.fetchone(lookup.sql, _params(lookup, api_id, connection_id))
        session = _build(lookup, fetched, read, reader.connection)
        if session is None:
            return None, 0
        params = _update_params(update, model, session.pk, now, writer.connection)
        return session, await writes.execute(update.sql, params)


# --- a message's last_seen_at refresh, compiled the same way --------------------------------

_BEFORE = datetime(1902, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)


@dataclass(frozen=True)
class _TouchPlan:
    sql: str
    params: tuple[Any, ...]
    pk_position: int
    now_position: int
    before_position: int


_touch_plans: dict[tuple[type, str], _TouchPlan | None] = {}


def _touch_rows(model: type[WebSocketSession], using: str, pk: Any, before: datetime) -> Any:
    return model.objects.using(using).filter(pk=pk, last_seen_at__lte=before)


def _compile_touch(model: type[WebSocketSession], using: str) -> _TouchPlan | None:
    if _FETCH_MODES:
        return None
    query = _touch_rows(model, using, _PK, _BEFORE).query.chain(UpdateQuery)
    query.add_update_values({"last_seen_at": _WHEN})
    sql, params = query.get_compiler(using).as_sql()
    params = tuple(params)
    connection = connections[using]
    field = model._meta.get_field("last_seen_at")
    found = {
        name: [i for i, p in enumerate(params) if p == value]
        for name, value in (
            ("pk", model._meta.pk.get_db_prep_value(_PK, connection)),
            ("now", field.get_db_prep_save(_WHEN, connection)),
            ("before", field.get_db_prep_value(_BEFORE, connection)),
        )
    }
    if any(len(positions) != 1 for positions in found.values()) or len(params) != 3:
        return None  # not the shape we know: the ORM handles it
    return _TouchPlan(sql, params, found["pk"][0], found["now"][0], found["before"][0])


async def atouch_last_seen(
    model: type[WebSocketSession], pk: Any, now: datetime, before: datetime
) -> int:
    """``UPDATE ... SET last_seen_at = now WHERE pk = pk AND last_seen_at <= before`` (the
    rows changed): on the loop when the async path serves the database, else the ORM's
    ``aupdate`` (a thread hop)."""
    using = router.db_for_write(model)
    db = asyncdb.database(using)
    if db is not None:
        if (model, using) not in _touch_plans:
            _touch_plans[(model, using)] = _compile_touch(model, using)
        plan = _touch_plans[(model, using)]
        if plan is not None:
            field = model._meta.get_field("last_seen_at")
            params = list(plan.params)
            params[plan.pk_position] = model._meta.pk.get_db_prep_value(pk, db.connection)
            params[plan.now_position] = field.get_db_prep_save(now, db.connection)
            params[plan.before_position] = field.get_db_prep_value(before, db.connection)
            return await db.execute(plan.sql, params)
    changed: int = await _touch_rows(model, using, pk, before).aupdate(last_seen_at=now)
    return changed
