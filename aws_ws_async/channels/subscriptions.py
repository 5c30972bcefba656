"""Adding and removing a connection's channels: the writes behind ``subscribe`` / ``unsubscribe``.

Each function is one thread hop (sync, called through ``sync_to_async``) and one transaction,
so a subscription is committed before anything is read or posted for it -- the ordering rule
that makes resume lossless (``docs/channels.md``, Guarantees): subscribe commits the row first,
then history is read and replayed.

The cap on subscriptions per connection is enforced under a row lock on the session
(``SELECT ... FOR UPDATE`` on PostgreSQL), so two ``subscribe`` messages of one connection
racing each other cannot both pass a full cap. SQLite serialises writers anyway.
"""

from __future__ import annotations

import enum

from django.db import IntegrityError, router, transaction
from django.db.models import Count, Q
from django.utils import timezone

from aws_ws_async.models import ChannelSubscription, WebSocketSession


class Subscribed(enum.Enum):
    """What :func:`subscribe` did."""

    CREATED = "created"
    #: Already subscribed (idempotent: a reconnecting client resumes its first channel so).
    EXISTS = "exists"
    #: The connection is at its cap; nothing was written.
    FULL = "full"


def _db(session: WebSocketSession) -> str:
    return session._state.db or router.db_for_write(ChannelSubscription, instance=session)


def subscribe(session: WebSocketSession, channel: str, cap: int) -> Subscribed:
    """Add ``channel`` to the connection unless present or at ``cap`` (one transaction)."""
    using = _db(session)
    rows = ChannelSubscription.objects.using(using)
    try:
        with transaction.atomic(using=using):
            # Serialise this connection's subscribes: the count below cannot go stale.
            list(
                WebSocketSession.objects.using(using)
                .select_for_update()
                .filter(pk=session.pk)
                .values_list("pk")
            )
            counts = rows.filter(session_id=session.pk).aggregate(
                total=Count("id"), here=Count("id", filter=Q(channel_name=channel))
            )
            if counts["here"]:
                return Subscribed.EXISTS
            if counts["total"] >= cap:
                return Subscribed.FULL
            rows.create(session_id=session.pk, channel_name=channel)
    except IntegrityError:  # a concurrent subscribe of the same channel won
        return Subscribed.EXISTS
    return Subscribed.CREATED


def unsubscribe(session: WebSocketSession, channel: str) -> bool:
    """Remove ``channel`` from the connection (one DELETE); False if it was not subscribed.

    The session's ``channel_name`` is not changed: it stays the connection's historical
    first channel (compatibility), even when that is the channel left.
    """
    rows = ChannelSubscription.objects.using(_db(session))
    deleted, _ = rows.filter(session_id=session.pk, channel_name=channel).delete()
    return deleted > 0


def change_channel(session: WebSocketSession, channel: str) -> None:
    """Move the connection's first channel to ``channel``: its subscription moves with it.

    The old first channel's subscription is removed and the new one added (if absent) together
    with the ``channel_name`` update, in one transaction; other subscriptions stay.
    """
    using = _db(session)
    rows = ChannelSubscription.objects.using(using)
    with transaction.atomic(using=using):
        old = session.channel_name
        if old and old != channel:
            rows.filter(session_id=session.pk, channel_name=old).delete()
        rows.get_or_create(session_id=session.pk, channel_name=channel)  # race-safe
        WebSocketSession.objects.using(using).filter(pk=session.pk).update(
            channel_name=channel, updated_on=timezone.now()
        )
    session.channel_name = channel


def channels_of(session: WebSocketSession) -> list[str]:
    """The connection's channels, in name order (one query)."""
    rows = ChannelSubscription.objects.using(_db(session)).filter(session_id=session.pk)
    return list(rows.order_by("channel_name").values_list("channel_name", flat=True))
