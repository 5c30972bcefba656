"""The statements of ``$connect``, sync, each group run in one thread hop by ``connect.py``.

A hop through ``sync_to_async`` costs about as much server CPU as a simple query, so the
statements that always follow one another on the happy path share one: the token read, its
browser session and the rate limit (``read_token``); spending the token and inserting the
session with its first subscription (``spend_and_insert``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

from django.db import IntegrityError, connections, router, transaction

from aws_ws_async.models import (
    ChannelPermission,
    ChannelSubscription,
    ConnectionRateLimit,
    WebSocketSession,
    WebSocketToken,
)
from aws_ws_async.views import connect_plans, reasons
from aws_ws_async.views.connect_sql import insert_row


class TokenRead(NamedTuple):
    """What ``read_token`` found, in the order the checks are made."""

    token: WebSocketToken | None
    #: The token's browser session still authenticates its user.
    live: bool
    #: The rate limit's ``(allowed, attempt)``, when it ran.
    checked: tuple[bool, ConnectionRateLimit] | None
    #: With a ``finish``: its ``(outcome, session)``; None when it did not run.
    finished: tuple[str, WebSocketSession | None] | None = None


#: The rest of ``$connect`` in the same thread hop, for a view whose checks after the rate
#: limit are the default ones: given the live, admitted token, ``(outcome, session)``.
Finish = Callable[[WebSocketToken], tuple[str, WebSocketSession | None]]


def read_token(
    raw: str,
    session_key: str,
    channel: str,
    rate: tuple[str | None, int, timedelta] | None = None,
    finish: Finish | None = None,
) -> TokenRead:
    """The token row (with its user and, for a channel, the channel's policy); for an active
    user's token, whether its browser session is live; for a live one with ``rate`` (bucket,
    attempts, window), the rate limit's ``(allowed, attempt)``; for an admitted one with
    ``finish``, the rest of ``$connect`` (sync: every statement in the caller's one thread hop,
    each only if the one before passed, so a refused token costs no rate-limit row here:
    ``_refuse`` counts it). Each statement is compiled once (``connect_plans``)."""
    token = connect_plans.load_token(raw, session_key, channel)
    if token is None or not token.user.is_active:
        return TokenRead(token, False, None)
    if not token.session_matches(connect_plans.session_data(token, session_key)):
        return TokenRead(token, False, None)
    checked = None
    if rate is not None:
        bucket, attempts, window = rate
        checked = connect_plans.record_and_check(
            bucket, token.user, max_attempts=attempts, window=window
        )
        if not checked[0]:
            return TokenRead(token, True, checked)
    return TokenRead(token, True, checked, finish(token) if finish is not None else None)


def channel_policy(token: WebSocketToken, channel: str) -> ChannelPermission | None:
    """The channel's policy row as the token read annotated it (None: the channel is unlisted)."""
    access = getattr(token, "_channel_access", None)
    if access is None:
        return None
    pk = getattr(token, "_channel_permission_id", None)
    return ChannelPermission(pk=pk, channel_name=channel, access=access)


#: The hooks between the rate limit and the spend: while a view keeps all of them, its checks
#: can run in the token's thread hop (``ConnectMixin._fused_checks``).
DEFAULT_HOOKS = (
    "_check_access",
    "can_join_channel",
    "get_channel_permission",
    "has_required_permissions",
    "has_any_permission",
    "has_all_permission",
    "additional_connection_checks",
    "_session_row",
    "set_user",
)
_default_hooks: dict[tuple[type, type], bool] = {}


def keeps_default_hooks(cls: type, base: type) -> bool:
    """Whether view class ``cls`` keeps ``base``'s implementation of every ``DEFAULT_HOOKS``."""
    key = (cls, base)
    kept = _default_hooks.get(key)
    if kept is None:
        kept = _default_hooks[key] = all(
            getattr(cls, name) is getattr(base, name) for name in DEFAULT_HOOKS
        )
    return kept


def finish_connect(
    token: WebSocketToken,
    channel: str,
    allow_unlisted: bool,
    make_row: Callable[[Any], WebSocketSession],
) -> tuple[str, WebSocketSession | None]:
    """The default checks after the rate limit, then the spend and the INSERTs (sync, in the
    token's hop): ``AccessMixin.can_join_channel``'s decision (a listed channel's policy, else
    ``allow_unlisted``), then ``spend_and_insert``. ``reasons.CHANNEL_DENIED`` spends nothing."""
    user = token.user
    if channel:
        policy = channel_policy(token, channel)
        if not (policy.allows(user) if policy is not None else allow_unlisted):
            return reasons.CHANNEL_DENIED, None
    row = make_row(user)
    return spend_and_insert(token, row), row


def spend_and_insert(token: WebSocketToken | None, row: WebSocketSession) -> str:
    """Spend the token, then INSERT the session (sync: one thread hop for both writes).

    ``""`` when both happened; ``reasons.TOKEN_SPENT`` when a concurrent ``$connect`` spent the
    token first (nothing inserted); ``reasons.DUPLICATE`` when the connection id exists (the
    token is given back: a refusal never burns it).
    """
    if token is not None and not connect_plans.spend(token):
        return reasons.TOKEN_SPENT
    try:
        insert_in_savepoint(row)
    except IntegrityError:
        if token is not None:
            connect_plans.unspend(token)
        return reasons.DUPLICATE
    return ""


def insert_in_savepoint(row: WebSocketSession) -> None:
    """``row.save()`` as an INSERT (compiled), in a savepoint only when a transaction is open.

    Without the savepoint an IntegrityError inside the caller's ``atomic()`` (``ATOMIC_REQUESTS``
    on a wrapping view, a ``TestCase``) poisons the transaction and the refusal's own write
    fails with a 500; in autocommit mode the savepoint would only add statements.
    """
    using = router.db_for_write(type(row), instance=row)
    if connections[using].in_atomic_block or row.channel_name:
        # The session and its first channel's subscription land together or not at all.
        with transaction.atomic(using=using):
            insert_row(row, using)
            subscribe_first_channel(row, using)
    else:
        insert_row(row, using)


def subscribe_first_channel(row: WebSocketSession, using: str) -> None:
    """The subscription row of the connection's first channel (none without a channel)."""
    if row.channel_name:
        subscription = ChannelSubscription(
            session=row, channel_name=row.channel_name, subscribed_at=row.connected_at
        )
        insert_row(subscription, using)
