"""Statements compiled once per model and database, then bound per request (``$connect``).

Under a real server ``$connect``'s cost was mostly the ORM building and compiling the same
seven statements on every request (about 60% of the samples). ``views/session_loader.py`` showed
the way for the message lookup; this module is the general form of it for ``$connect``:

* a SELECT is the queryset the ORM would run, compiled once with sentinel values in place of
  the request's values; the request's values, prepared by their fields for the backend exactly
  as the lookups prepare them, take the sentinels' places, and the rows are turned into
  instances the way ``ModelIterable`` does (``from_db``, Django's related populators, the
  converters, annotations);
* an UPDATE is ``QuerySet.update``'s ``UpdateQuery``, compiled the same way;
* an INSERT is ``Model.save(force_insert=True)``'s one statement for a plain model (an
  auto primary key returned by ``RETURNING``, no parents, no database defaults, nobody
  listening to ``pre_save``/``post_save``: those still go through ``save()``).

Every statement runs through Django's cursor of the routed connection, so query logging,
execute wrappers, ``assertNumQueries`` and ``DEBUG`` capture see each one as before, and
writes are wrapped in ``mark_for_rollback_on_error`` as the ORM wraps them. A shape this module
does not know at compile time (Django 6.1's fetch modes, composite fields, a sentinel found
a surprising number of times) gives ``None``, and the caller runs the ORM instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.models import NOT_PROVIDED, Model
from django.db.models.query import get_related_populators
from django.db.models.signals import post_save, pre_save
from django.db.models.sql import InsertQuery, UpdateQuery

#: Django 6.1's fetch modes change how instances are built: there the ORM builds them.
FETCH_MODES = "fetch_mode" in inspect.signature(get_related_populators).parameters


def prep(field: Any, value: Any, using: Any) -> Any:
    """``value`` as a lookup on ``field`` hands it to the backend (what the compiler puts in
    its params for ``field=value``, ``field__gt=value``, each item of ``field__in``);
    ``using`` is an alias or a connection wrapper (the async path's own)."""
    connection = connections[using] if isinstance(using, str) else using
    return field.get_db_prep_value(value, connection, prepared=False)


@dataclass(frozen=True)
class Statement:
    """SQL with the params the compiler gave and, per named slot, where its value goes."""

    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[str, tuple[int, ...]], ...]

    def bind(self, values: Mapping[str, Any]) -> list[Any]:
        """The params with each slot's (already prepared) value in its places."""
        params = list(self.params)
        for name, positions in self.slots:
            value = values[name]
            for i in positions:
                params[i] = value
        return params


def statement(sql: str, params: Any, sentinels: Mapping[str, tuple[Any, int]]) -> Statement | None:
    """Find each prepared sentinel (``name -> (value, times expected)``) in ``params``;
    None when one is not found exactly that many times (a shape we do not know)."""
    params = tuple(params)
    slots = []
    for name, (value, expected) in sentinels.items():
        positions = tuple(i for i, p in enumerate(params) if _same(p, value))
        if len(positions) != expected:
            return None
        slots.append((name, positions))
    return Statement(sql, params, tuple(slots))


def _same(param: Any, sentinel: Any) -> bool:
    return type(param) is type(sentinel) and bool(param == sentinel)


def convert_row(row: list[Any], converters: Any, connection: Any) -> list[Any]:
    """``row`` through the compiler's converters, as ``apply_converters`` does."""
    for position, (functions, expression) in converters:
        value = row[position]
        for function in functions:
            value = function(value, expression, connection)
        row[position] = value
    return row


# --- SELECT -> instances ---------------------------------------------------------------------


@dataclass(frozen=True)
class SelectPlan:
    """A compiled SELECT of ``model`` rows (with ``select_related`` and annotations)."""

    statement: Statement
    using: str
    model: type[Model]
    start: int
    end: int
    init_list: tuple[str, ...]
    populators: tuple[Any, ...]
    annotations: tuple[tuple[str, int], ...]
    converters: tuple[Any, ...]

    def rows(self, values: Mapping[str, Any]) -> list[list[Any]]:
        """The converted rows for these slot values, through Django's cursor."""
        connection = connections[self.using]
        with connection.cursor() as cursor:
            cursor.execute(self.statement.sql, self.statement.bind(values))
            fetched = cursor.fetchall()
        return [convert_row(list(row), self.converters, connection) for row in fetched]

    def instance(self, row: list[Any]) -> Any:
        """The instance ``ModelIterable`` would build from ``row``."""
        obj = self.model.from_db(self.using, list(self.init_list), row[self.start : self.end])
        for populator in self.populators:
            populator.populate(row, obj)
        for name, position in self.annotations:
            setattr(obj, name, row[position])
        return obj


def compile_select(
    queryset: Any, using: str, sentinels: Mapping[str, tuple[Any, int]]
) -> SelectPlan | None:
    """``queryset`` (built with sentinel values, sliced as it will run) compiled once."""
    if FETCH_MODES:
        return None
    compiler = queryset.query.get_compiler(using=using)
    sql, params = compiler.as_sql()
    found = statement(sql, params, sentinels)
    klass_info = compiler.klass_info
    if found is None or klass_info is None or klass_info["model"] is not queryset.model:
        return None
    select = compiler.select
    fields = klass_info["select_fields"]
    columns = [s[0] for s in select[0 : compiler.col_count]]
    if compiler.has_composite_fields(columns) or queryset.query.extra_select:
        return None
    start, end = fields[0], fields[-1] + 1
    return SelectPlan(
        statement=found,
        using=using,
        model=queryset.model,
        start=start,
        end=end,
        init_list=tuple(f[0].target.attname for f in select[start:end]),
        populators=tuple(get_related_populators(klass_info, select, using)),  # type: ignore[call-arg]
        annotations=tuple(compiler.annotation_col_map.items()),
        converters=tuple(compiler.get_converters(columns).items()),
    )


# --- UPDATE -----------------------------------------------------------------------------------


def compile_update(
    rows: Any, values: Mapping[str, Any], using: str, sentinels: Mapping[str, tuple[Any, int]]
) -> Statement | None:
    """``rows.update(**values)`` (built with sentinel values) compiled once."""
    if FETCH_MODES:
        return None
    query = rows.query.chain(UpdateQuery)
    query.add_update_values(dict(values))
    query.annotations = {}
    sql, params = query.get_compiler(using).as_sql()
    if not sql.startswith("UPDATE") or query.related_updates:
        return None
    return statement(sql, params, sentinels)


def run_update(plan: Statement, using: str, values: Mapping[str, Any]) -> int:
    """The rows the compiled UPDATE changed (in a thread: Django's sync cursor)."""
    connection = connections[using]
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(plan.sql, plan.bind(values))
        return int(cursor.rowcount)


# --- INSERT -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InsertPlan:
    sql: str
    fields: tuple[Any, ...]


_inserts: dict[tuple[type, str], InsertPlan | None] = {}


def _compile_insert(model: type[Model], using: str) -> InsertPlan | None:
    meta = model._meta
    connection = connections[using]
    auto = meta.auto_field
    if FETCH_MODES or meta.proxy or meta.parents or auto is None or meta.pk is not auto:
        return None
    if not connection.features.can_return_columns_from_insert:
        return None
    if list(meta.db_returning_fields) != [auto]:
        return None
    fields = tuple(f for f in meta.local_concrete_fields if not f.generated and f is not auto)
    for field in fields:
        if field.db_default is not NOT_PROVIDED or hasattr(field, "get_placeholder"):
            return None
    query = InsertQuery(model)
    query.insert_values(list(fields), [model()])
    compiler = query.get_compiler(using=using)
    compiler.returning_fields = [auto]
    compiled = compiler.as_sql()
    if len(compiled) != 1 or compiler.returning_params:
        return None
    sql, params = compiled[0]
    if len(params) != len(fields) or compiler.get_converters([auto.get_col(meta.db_table)]):
        return None
    return InsertPlan(sql, fields)


def insert_plan(model: type[Model], using: str) -> InsertPlan | None:
    key = (model, using)
    if key not in _inserts:
        _inserts[key] = _compile_insert(model, using)
    return _inserts[key]


def insert_params(obj: Model, using: str, connection: Any) -> tuple[InsertPlan, list[Any]] | None:
    """The compiled INSERT of ``obj`` and its params; None when only ``save()`` will do: a
    receiver of ``pre_save``/``post_save``, a primary key already set, an expression value."""
    model = type(obj)
    plan = insert_plan(model, using)
    if (
        plan is None
        or obj.pk is not None
        or pre_save.has_listeners(model)
        or post_save.has_listeners(model)
    ):
        return None
    obj._prepare_related_fields_for_save(operation_name="save")  # type: ignore[attr-defined]
    params = []
    for field in plan.fields:
        value = field.pre_save(obj, True)
        if hasattr(value, "resolve_expression"):
            return None
        params.append(field.get_db_prep_save(value, connection))
    return plan, params


def inserted(obj: Model, using: str, pk: Any) -> None:
    """What ``save()`` records on an instance it inserted."""
    setattr(obj, type(obj)._meta.pk.attname, pk)
    obj._state.adding = False
    obj._state.db = using


def insert_row(obj: Model, using: str) -> None:
    """``obj.save(force_insert=True, using=using)`` as the one compiled INSERT (sync), or
    ``save()`` itself whenever it would do more than that statement (``insert_params``)."""
    connection = connections[using]
    compiled = insert_params(obj, using, connection)
    if compiled is None:
        obj.save(force_insert=True, using=using)
        return
    plan, params = compiled
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(plan.sql, params)
        returned = connection.ops.fetch_returned_insert_columns(cursor, ())  # type: ignore[attr-defined]
    inserted(obj, using, returned[0])
