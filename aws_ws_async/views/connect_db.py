"""The statements of ``$connect``, sync, each group run in one thread hop by ``connect.py``.

A hop through ``sync_to_async`` costs about as much server CPU as a simple query, so the
statements that always follow one another on the happy path share one: the token read, its
browser session and the rate limit (``read_token``); spending the token and inserting the
session with its first subscription (``spend_and_insert``).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, connections, router, transaction

from aws_ws_async.models import (
    ChannelSubscription,
    ConnectionRateLimit,
    WebSocketSession,
    WebSocketToken,
)
from aws_ws_async.views import connect_plans, reasons
from aws_ws_async.views.connect_sql import insert_row


def read_token(
    raw: str,
    session_key: str,
    channel: str,
    rate: tuple[str | None, int, timedelta] | None = None,
) -> tuple[WebSocketToken | None, bool, tuple[bool, ConnectionRateLimit] | None]:
    """The token row (with its user and, for a channel, the channel's policy); for an active
    user's token, whether its browser session is live; for a live one with ``rate`` (bucket,
    attempts, window), the rate limit's ``(allowed, attempt)`` (sync: every statement in the
    caller's one thread hop, each only if the one before passed, so a refused token costs no
    rate-limit row here: ``_refuse`` counts it). Each statement is compiled once
    (``connect_plans``)."""
    token = connect_plans.load_token(raw, session_key, channel)
    if token is None or not token.user.is_active:
        return token, False, None
    if not token.session_matches(connect_plans.session_data(token, session_key)):
        return token, False, None
    if rate is None:
        return token, True, None
    bucket, attempts, window = rate
    checked = connect_plans.record_and_check(
        bucket, token.user, max_attempts=attempts, window=window
    )
    return token, True, checked


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
