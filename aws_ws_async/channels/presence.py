"""Who is online in a channel now: users and connections, with counts, in ONE query.

Presence is not a table of its own: it is an aggregate over the channel's subscription rows
joined with their sessions, grouped by user (``GROUP BY`` the user's id and display field). A
connection counts while its session is *live*:

* ``connected`` -- ``$disconnect``, a 410 from ``@connections``, a server-side close, the
  reaper (:mod:`.reaper`) and ``clear_websocket_sessions --stale`` all clear it; and
* inside API Gateway's limits -- connected less than 2 hours ago and seen (a message or a
  ``ping``) within the 10-minute idle timeout plus the ``last_seen_interval_seconds`` slack,
  exactly the complement of ``WebSocketSession.objects.stale()``. A connection whose
  ``$disconnect`` never reached us therefore leaves presence by itself when API Gateway's own
  rules have closed it, before any cleanup runs.

A user with three tabs is one user with ``connections=3``. Anonymous connections (no user) are
not users: they count in ``connections`` and ``anonymous`` only. The display name is the user
model's ``USERNAME_FIELD`` (what ``get_username()`` returns) unless ``display_field`` names
another field or lookup (``"email"``, ``"profile__nickname"``), read in the same query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from aws_ws_async.conf import get_settings
from aws_ws_async.delivery.payload import MAX_PAYLOAD_BYTES
from aws_ws_async.models import ChannelSubscription
from aws_ws_async.models.sessions import IDLE_TIMEOUT, MAX_CONNECTION_AGE
from aws_ws_async.validators import is_valid_channel_name


@dataclass(frozen=True, slots=True)
class PresenceUser:
    """One user online in the channel: their display name, id and live connections there."""

    user: str
    connections: int
    user_id: Any = None


@dataclass(frozen=True, slots=True)
class Presence:
    """A channel's presence snapshot; ``count`` is the number of distinct users online."""

    channel: str
    users: list[PresenceUser] = field(default_factory=list)
    #: Live connections in the channel, anonymous ones included.
    connections: int = 0
    #: Distinct users online (``len(users)``).
    count: int = 0
    #: Live connections without a user.
    anonymous: int = 0

    def frame(self, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
        """The ``presence`` snapshot frame of the wire protocol (``docs/channels.md``).

        It must fit one ``@connections`` post (128 KiB): a channel of thousands of users is
        listed as far as it fits, in name order, with ``"truncated": true`` (``count`` stays
        the full number of users online).
        """
        frame: dict[str, Any] = {
            "type": "presence",
            "channel": self.channel,
            "event": "snapshot",
            "users": [],
            "count": self.count,
        }
        budget = max_bytes - len(_dumps(frame)) - len(',"truncated":true')
        for u in self.users:
            item = {"user": u.user, "connections": u.connections}
            budget -= len(_dumps(item)) + 1  # the comma
            if budget < 0:
                frame["truncated"] = True
                break
            frame["users"].append(item)
        return frame


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def live_cutoffs(now: datetime | None = None) -> Q:
    """The live-session condition on ``session__``: connected and within API Gateway's limits.

    The complement of ``WebSocketSessionQuerySet.stale()`` (same slack for the throttled
    ``last_seen_at`` refresh), so presence and the stale cleanup never disagree.
    """
    now = now or timezone.now()
    slack = timedelta(seconds=get_settings().last_seen_interval_seconds)
    return Q(
        session__connected=True,
        session__connected_at__gte=now - MAX_CONNECTION_AGE,
        session__last_seen_at__gte=now - IDLE_TIMEOUT - slack,
    )


def live_subscriptions(channel: str, using: str | None = None) -> QuerySet[ChannelSubscription]:
    """The channel's subscription rows whose session is live (see :func:`live_cutoffs`)."""
    rows = ChannelSubscription.objects.all()
    if using is not None:
        rows = rows.using(using)
    return rows.filter(live_cutoffs(), channel_name=channel)


def _display_lookup(display_field: str | None) -> str:
    name = display_field or get_user_model().USERNAME_FIELD
    return f"session__user__{name}"


def presence_query(
    channel: str, using: str | None = None, display_field: str | None = None
) -> QuerySet[Any]:
    """The one query: ``(user id, display value, connections)`` per user, anonymous as None."""
    display = _display_lookup(display_field)
    rows: QuerySet[Any] = (
        live_subscriptions(channel, using)
        .values("session__user_id", display)
        .annotate(connections=Count("id"))
        .order_by(display, "session__user_id")
    )
    return rows


def build(channel: str, rows: list[dict[str, Any]], display_field: str | None) -> Presence:
    """Turn the grouped rows into a :class:`Presence` (no query)."""
    display = _display_lookup(display_field)
    users: list[PresenceUser] = []
    anonymous = total = 0
    for row in rows:
        total += row["connections"]
        if row["session__user_id"] is None:
            anonymous += row["connections"]
            continue
        name = row[display]
        users.append(
            PresenceUser(
                "" if name is None else str(name), row["connections"], row["session__user_id"]
            )
        )
    return Presence(channel, users, total, len(users), anonymous)


def _check(channel: Any) -> str:
    if not isinstance(channel, str):
        raise TypeError(f"channel must be a str, not {type(channel).__name__}")
    if not is_valid_channel_name(channel):
        raise ValueError(f"invalid channel name {channel!r}")
    return channel


def _rows(query: QuerySet[Any]) -> list[dict[str, Any]]:
    return list(query)


def presence(
    channel: str, using: str | None = None, *, display_field: str | None = None
) -> Presence:
    """Who is online in ``channel`` now (one query, on ``using`` or the default database)."""
    channel = _check(channel)
    rows = list(presence_query(channel, using, display_field))
    return build(channel, rows, display_field)


async def apresence(
    channel: str, using: str | None = None, *, display_field: str | None = None
) -> Presence:
    """Async twin of :func:`presence` (the query runs in one thread hop)."""
    channel = _check(channel)
    query = presence_query(channel, using, display_field)
    rows: list[dict[str, Any]] = await sync_to_async(_rows)(query)
    return build(channel, rows, display_field)


def _user_counts(user_id: Any) -> dict[str, Any]:
    return {
        "mine": Count("id", filter=Q(session__user_id=user_id)),
        "count": Count("session__user_id", distinct=True),
    }


def user_presence(channel: str, user_id: Any, using: str | None = None) -> tuple[int, int]:
    """Sync twin of :func:`auser_presence`."""
    counts = live_subscriptions(channel, using).aggregate(**_user_counts(user_id))
    return int(counts["mine"] or 0), int(counts["count"] or 0)


async def auser_presence(channel: str, user_id: Any, using: str | None = None) -> tuple[int, int]:
    """``(that user's live connections in channel, users online)`` in one aggregate query.

    What a join/leave event needs: the event is sent when the first connection of a user
    appears (1 after subscribing) or the last goes (0 after leaving).
    """
    counts = await live_subscriptions(channel, using).aaggregate(**_user_counts(user_id))
    return int(counts["mine"] or 0), int(counts["count"] or 0)


def user_connections(channel: str, user_id: Any, using: str | None = None) -> int:
    """Sync twin of :func:`auser_connections`."""
    return live_subscriptions(channel, using).filter(session__user_id=user_id).count()


async def auser_connections(channel: str, user_id: Any, using: str | None = None) -> int:
    """That user's live connections in the channel: one indexed query (the user's sessions).

    Cheap whatever the channel's size, so deciding that a second tab is *not* a join costs
    nothing like :func:`auser_presence`'s count of every user online.
    """
    rows = live_subscriptions(channel, using).filter(session__user_id=user_id)
    return await rows.acount()


async def ausers_online(channel: str, using: str | None = None) -> int:
    """Distinct users online in the channel (one aggregate over the channel)."""
    counts = await live_subscriptions(channel, using).aaggregate(
        count=Count("session__user_id", distinct=True)
    )
    return int(counts["count"] or 0)
