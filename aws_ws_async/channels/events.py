"""Presence ``join`` / ``leave`` events: told to a channel when a *user* arrives or goes.

A user with three tabs joins once (their first live connection in the channel) and leaves once
(their last one goes), so the decision needs that user's live connections in the channel after
the change: one indexed query through the user's sessions, cheap whatever the channel's size.
Only when an event is due is the number of users online counted for the frame (one aggregate
over the channel). The event is then an ordinary broadcast to
the channel's audience (``subscribed_to``), *except* the connection that caused it: on
``$connect`` that socket is not open yet (a post would get 410 and mark it gone), and a client
learns its own state from the ``subscribed`` frame or a ``presence`` snapshot.

Events are hints, not the truth: two tabs of one user connecting at the same instant can both
see two connections (no join sent) or both leave seeing zero (two leaves). A client that needs
the exact list asks for a snapshot (``{"action": "presence"}``), which is one query.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_ws_async.channels.presence import auser_connections, ausers_online
from aws_ws_async.delivery import DeliveryReport
from aws_ws_async.models import WebSocketSession

Event = Literal["join", "leave"]


def event_frame(
    channel: str, event: Event, user: str, connections: int, count: int
) -> dict[str, Any]:
    """The ``presence`` join/leave frame of the wire protocol."""
    return {
        "type": "presence",
        "channel": channel,
        "event": event,
        "user": user,
        "connections": connections,
        "count": count,
    }


async def aannounce(
    session: WebSocketSession, channel: str, event: Event, user: str
) -> DeliveryReport | None:
    """Broadcast ``event`` for ``session``'s user if it changes who is online; else None.

    Call it after the change committed (subscription row written or removed, session marked
    disconnected). Anonymous sessions have no presence and announce nothing.
    """
    if session.user_id is None:
        return None
    db = session._state.db
    mine = await auser_connections(channel, session.user_id, using=db)
    if (event == "join" and mine != 1) or (event == "leave" and mine != 0):
        return None  # another tab of the user is (still) there: no event, and no big count
    count = await ausers_online(channel, using=db)
    audience = WebSocketSession.objects.db_manager(db).subscribed_to(channel).exclude(pk=session.pk)
    return await audience.asend_message(
        event_frame(channel, event, user, mine, count), collect_delivered=False
    )
