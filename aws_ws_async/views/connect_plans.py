"""``$connect``'s statements, each compiled once per database (``connect_sql``) and bound per
request, with the ORM form of each kept beside it as the definition and the fallback.

The ORM forms come from the models (``WebSocketToken.unspent_rows_for``, ``spend_rows``,
``unspend_rows``, ``ConnectionRateLimit.window_query``), so the compiled SQL cannot drift from
what the models define. The databases are the ORM's: ``router.db_for_read`` for the token, the
browser session and the window count, ``router.db_for_write`` for the spend and the attempt.
The browser session is read by the compiled statement only for Django's ``db`` engine exactly;
any other ``SESSION_ENGINE`` keeps its ``SessionStore``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.db import connections, router
from django.db.models import Subquery
from django.db.models.sql.query import Query
from django.utils import timezone

from aws_ws_async.hashing import session_key_hashes
from aws_ws_async.models import ChannelPermission, ConnectionRateLimit, WebSocketToken
from aws_ws_async.models.tokens import digest_token
from aws_ws_async.views.connect_sql import (
    SelectPlan,
    Statement,
    compile_select,
    compile_update,
    convert_row,
    insert_row,
    prep,
    run_update,
    statement,
)

DB_SESSION_ENGINE = "django.contrib.sessions.backends.db"

_TEXT = "\x00aws-ws-async-{}\x00"
_WHEN = datetime(1901, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
_IP = "192.0.2.199"


def _key_sentinel(field: Any) -> Any:
    """A value of ``field``'s (primary or foreign key) type that no real row has; None for a
    type this module does not know (the ORM then runs)."""
    internal = field.target_field.get_internal_type() if field.is_relation else None
    internal = internal or field.get_internal_type()
    if internal in {"AutoField", "BigAutoField", "SmallAutoField", "IntegerField"}:
        return -7_394_212_117 if "Small" not in internal else -31_111
    if internal in {"BigIntegerField", "PositiveBigIntegerField"}:
        return -7_394_212_117
    if internal == "UUIDField":
        return uuid.UUID(int=0x5E17_1E1)
    if internal == "CharField":
        return _TEXT.format("key")
    return None


def _field(model: Any, name: str) -> Any:
    return model._meta.get_field(name)


# --- the token, with its user and the channel's policy ----------------------------------------


def token_queryset(digest: str, key_hashes: list[str], now: datetime, channel: str) -> Any:
    """The token read (ORM form): the unspent row with its user, and with a channel the
    channel's access level and policy id as two subqueries (one statement)."""
    queryset = WebSocketToken.unspent_rows_for(digest, key_hashes, now).select_related("user")
    if channel:
        rows = ChannelPermission.objects.filter(channel_name=channel)
        queryset = queryset.annotate(
            _channel_access=Subquery(rows.values("access")[:1]),
            _channel_permission_id=Subquery(rows.values("pk")[:1]),
        )
    return queryset


_tokens: dict[tuple[str, bool, int], SelectPlan | None] = {}


def _compile_token(using: str, channel: bool, hashes: int) -> SelectPlan | None:
    names = [f"hash{i}" for i in range(hashes)]
    sentinel_hashes = [_TEXT.format(name) for name in names]
    queryset = token_queryset(
        _TEXT.format("digest"), sentinel_hashes, _WHEN, _TEXT.format("channel") if channel else ""
    ).using(using)
    queryset = queryset.order_by("pk")[:1]  # what .first() adds to an unordered queryset
    key_hash = _field(WebSocketToken, "session_key_hash")
    sentinels = {
        "digest": (prep(_field(WebSocketToken, "token"), _TEXT.format("digest"), using), 1),
        "now": (prep(_field(WebSocketToken, "expires_at"), _WHEN, using), 1),
        **{n: (prep(key_hash, s, using), 1) for n, s in zip(names, sentinel_hashes, strict=True)},
    }
    if channel:
        field = _field(ChannelPermission, "channel_name")
        sentinels["channel"] = (prep(field, _TEXT.format("channel"), using), 2)
    return compile_select(queryset, using, sentinels)


def token_args(raw: str, session_key: str) -> tuple[str, list[str], datetime] | None:
    """``(digest, session key hashes, now)`` of a token read; None: no row can match."""
    if not session_key or len(session_key) > 256:  # what WebSocketToken.unspent refuses
        return None
    hashes = list(dict.fromkeys(session_key_hashes(session_key)))  # __in drops duplicates
    return digest_token(raw), hashes, timezone.now()


def token_plan(using: str, channel: str, hashes: int, *, build: bool = True) -> Any:
    """The compiled token read (None: the ORM runs; ``build=False``: None until compiled)."""
    key = (using, bool(channel), hashes)
    if key not in _tokens:
        if not build:
            return None
        _tokens[key] = _compile_token(using, bool(channel), hashes)
    return _tokens[key]


def token_values(
    args: tuple[str, list[str], datetime], channel: str, connection: Any
) -> dict[str, Any]:
    digest, hashes, now = args
    key_hash = _field(WebSocketToken, "session_key_hash")
    values = {
        "digest": prep(_field(WebSocketToken, "token"), digest, connection),
        "now": prep(_field(WebSocketToken, "expires_at"), now, connection),
        **{f"hash{i}": prep(key_hash, h, connection) for i, h in enumerate(hashes)},
    }
    if channel:
        values["channel"] = prep(_field(ChannelPermission, "channel_name"), channel, connection)
    return values


def load_token(raw: str, session_key: str, channel: str) -> WebSocketToken | None:
    """The unspent token ``raw`` bound to ``session_key`` (see ``token_queryset``), or None."""
    args = token_args(raw, session_key)
    if args is None:
        return None
    using = router.db_for_read(WebSocketToken)
    plan = token_plan(using, channel, len(args[1]))
    if plan is None:
        token: WebSocketToken | None = token_queryset(*args, channel).first()
        return token
    rows = plan.rows(token_values(args, channel, using))
    return plan.instance(rows[0]) if rows else None


# --- the browser session ---------------------------------------------------------------------

_sessions: dict[str, tuple[SelectPlan, int] | None] = {}


def _compile_session(store: DbSessionStore, using: str) -> tuple[SelectPlan, int] | None:
    model = store.model
    queryset = model.objects.using(using).filter(
        session_key=_TEXT.format("session"), expire_date__gt=_WHEN
    )
    queryset = queryset.order_by()  # what .get() runs: no ordering, at most 21 rows
    queryset.query.set_limits(high=21)
    sentinels = {
        "key": (prep(_field(model, "session_key"), _TEXT.format("session"), using), 1),
        "now": (prep(_field(model, "expire_date"), _WHEN, using), 1),
    }
    plan = compile_select(queryset, using, sentinels)
    if plan is None or "session_data" not in plan.init_list:
        return None
    return plan, plan.start + plan.init_list.index("session_data")


def session_data(token: WebSocketToken, session_key: str) -> Any:
    """What ``SessionStore(session_key).load()`` returns: the decoded data of the unexpired
    session row, ``{}`` without one (the same query as ``load()``'s ``get()``)."""
    store = token._session_store(session_key)
    if settings.SESSION_ENGINE != DB_SESSION_ENGINE or type(store) is not DbSessionStore:
        return store.load()
    if store.session_key is None:  # too short: load() finds nothing either
        return store.load()
    using = router.db_for_read(store.model)
    if using not in _sessions:
        _sessions[using] = _compile_session(store, using)
    compiled = _sessions[using]
    if compiled is None:
        return store.load()
    plan, data = compiled
    rows = plan.rows(session_values(store, using))
    if len(rows) != 1:
        return store.load() if rows else {}
    return store.decode(rows[0][data])


def session_values(store: DbSessionStore, connection: Any) -> dict[str, Any]:
    model = store.model
    return {
        "key": prep(_field(model, "session_key"), store.session_key, connection),
        "now": prep(_field(model, "expire_date"), timezone.now(), connection),
    }


# --- the rate limit: INSERT the attempt, then COUNT the window --------------------------------

_counts: dict[tuple[str, bool, bool], tuple[Statement, tuple[Any, ...]] | None] = {}


def _compile_counts(
    using: str, by_ip: bool, by_user: bool
) -> tuple[Statement, tuple[Any, ...]] | None:
    user_field = _field(ConnectionRateLimit, "user")
    user = _key_sentinel(user_field) if by_user else None
    if by_user and user is None:
        return None
    rows, counts = ConnectionRateLimit.window_query(_IP if by_ip else None, user, _WHEN)
    # What QuerySet.aggregate() compiles for a plain filtered queryset (no GROUP BY).
    query: Query = rows.query.chain()
    for alias, aggregate in counts.items():
        query.add_annotation(aggregate, alias, select=True)
    query.select = ()
    query.default_cols = False
    query.clear_ordering(force=True)
    sql, params = query.get_compiler(using).as_sql()
    sentinels = {"since": (prep(_field(ConnectionRateLimit, "attempt_time"), _WHEN, using), 1)}
    if by_ip:
        sentinels["ip"] = (prep(_field(ConnectionRateLimit, "ip_address"), _IP, using), 2)
    if by_user:
        sentinels["user"] = (prep(user_field, user, using), 2)
    found = statement(sql, params, sentinels)
    if found is None or list(query.annotation_select) != list(counts):
        return None
    compiler = query.get_compiler(using)
    converters = tuple(compiler.get_converters(list(query.annotation_select.values())).items())
    return found, converters


def window_counts(ip_address: str | None, user_id: Any, window: timedelta) -> tuple[int, int]:
    """``ConnectionRateLimit.window_counts`` as the compiled aggregate."""
    if not ip_address and not user_id:
        return 0, 0
    since = timezone.now() - window
    using = router.db_for_read(ConnectionRateLimit)
    key = (using, bool(ip_address), bool(user_id))
    if key not in _counts:
        _counts[key] = _compile_counts(using, bool(ip_address), bool(user_id))
    compiled = _counts[key]
    if compiled is None:
        rows, counts = ConnectionRateLimit.window_query(ip_address, user_id, since)
        result = rows.aggregate(**counts)
        return int(result.get("by_ip") or 0), int(result.get("by_user") or 0)
    plan, converters = compiled
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, plan.bind(count_values(ip_address, user_id, since, connection)))
        row = convert_row(list(cursor.fetchone()), converters, connection)
    return counted(row, ip_address, user_id)


def count_values(ip_address: str | None, user_id: Any, since: datetime, connection: Any) -> Any:
    values = {"since": prep(_field(ConnectionRateLimit, "attempt_time"), since, connection)}
    if ip_address:
        values["ip"] = prep(_field(ConnectionRateLimit, "ip_address"), ip_address, connection)
    if user_id:
        values["user"] = prep(_field(ConnectionRateLimit, "user"), user_id, connection)
    return values


def counted(row: list[Any], ip_address: str | None, user_id: Any) -> tuple[int, int]:
    """``(by_ip, by_user)`` from the converted row of the count (a column per side present)."""
    by_ip = int(row.pop(0) or 0) if ip_address else 0
    by_user = int(row.pop(0) or 0) if user_id else 0
    return by_ip, by_user


def record_and_check(
    ip_address: str | None, user: Any, *, max_attempts: int, window: timedelta
) -> tuple[bool, ConnectionRateLimit]:
    """``ConnectionRateLimit.record_and_check`` with the compiled INSERT and COUNT."""
    user_id = getattr(user, "pk", None)
    attempt = ConnectionRateLimit(
        ip_address=ip_address, user=user if user_id else None, successful=True
    )
    insert_row(attempt, router.db_for_write(ConnectionRateLimit))
    by_ip, by_user = window_counts(ip_address, user_id, window)
    return by_ip <= max_attempts and by_user <= max_attempts, attempt


# --- spending the token, and giving it back --------------------------------------------------

_updates: dict[tuple[str, str], Statement | None] = {}


def _compile_spend(using: str, which: str) -> Statement | None:
    pk_field = WebSocketToken._meta.pk
    pk = _key_sentinel(pk_field)
    if pk is None:
        return None
    when = prep(_field(WebSocketToken, "used_at"), _WHEN, using)
    sentinels = {"pk": (prep(pk_field, pk, using), 1)}
    if which == "spend":
        rows = WebSocketToken.spend_rows(pk, _WHEN)
        return compile_update(
            rows, WebSocketToken.spend_values(_WHEN), using, {**sentinels, "when": (when, 2)}
        )
    rows = WebSocketToken.unspend_rows(pk, _WHEN)
    return compile_update(
        rows, WebSocketToken.UNSPEND_VALUES, using, {**sentinels, "when": (when, 1)}
    )


def _update(which: str, token: WebSocketToken, when: datetime) -> int:
    using = router.db_for_write(WebSocketToken)
    key = (using, which)
    if key not in _updates:  # both at once: the async path needs the unspend ready too
        for either in ("spend", "unspend"):
            _updates[(using, either)] = _compile_spend(using, either)
    plan = _updates[key]
    if plan is None:
        if which == "spend":
            return WebSocketToken.spend_rows(token.pk, when).update(**token.spend_values(when))
        return WebSocketToken.unspend_rows(token.pk, when).update(**token.UNSPEND_VALUES)
    return run_update(plan, using, update_values(token, when, using))


def update_values(token: WebSocketToken, when: datetime, connection: Any) -> dict[str, Any]:
    return {
        "pk": prep(WebSocketToken._meta.pk, token.pk, connection),
        "when": prep(_field(WebSocketToken, "used_at"), when, connection),
    }


def spend(token: WebSocketToken) -> bool:
    """``token.spend()`` as the compiled conditional UPDATE."""
    now = timezone.now()
    if _update("spend", token, now) != 1:
        return False
    token.used, token.used_at = True, now
    return True


def unspend(token: WebSocketToken) -> bool:
    """``token.unspend()`` as the compiled conditional UPDATE."""
    if not token.used or token.used_at is None:
        return False
    if _update("unspend", token, token.used_at) != 1:
        return False
    token.used, token.used_at = False, None
    return True
