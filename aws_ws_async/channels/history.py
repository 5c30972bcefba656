"""Resume: what a (re)subscribing connection missed, posted to that connection only, in order.

``areplay(session, channel, since)`` is called by the ``subscribe`` handler AFTER the
subscription row has committed (the ordering rule in ``docs/channels.md``). It reads the kept
frames with ``seq > since`` (two queries, one thread hop) and posts them one by one, each after
the previous one was accepted, so they arrive in seq order. One post per frame, not a batch: a
replay frame is an ordinary ``message`` frame, so the client has one code path, and a replay is
bounded (``limit``, default the ``channel_replay_limit`` setting, 500) so it stays a few
round-trips.

A ``gap`` frame comes first when the client cannot be made whole from history:

* ``since`` is older than the oldest kept message (pruned by count or age),
* more than ``limit`` messages were missed (only the newest ``limit`` are replayed),
* ``since`` is beyond the channel's latest seq (the client saw a channel that was reset, or
  another database): everything kept is replayed.

The client refetches its state on ``gap``; it is still subscribed and gets the replay from
``oldest``. With history off (no row, or disabled) nothing is posted and ``latest_seq`` is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from aws_ws_async.channels.frames import check_channel, gap_frame
from aws_ws_async.conf import get_settings
from aws_ws_async.models.history import ChannelHistory, ChannelMessage
from aws_ws_async.models.sessions import WebSocketSession

#: The largest seq a channel can reach (``last_seq`` is a 64-bit signed column).
MAX_SEQ = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """``latest_seq`` for the ``subscribed`` frame (None: history off), frames replayed, gap."""

    latest_seq: int | None
    replayed: int
    gap: bool
    #: False when a post failed or found the connection gone: the replay stopped there.
    complete: bool = True


@dataclass(frozen=True, slots=True)
class _Plan:
    latest: int | None
    gap: bytes | None
    frames: list[bytes]


def check_since(since: Any) -> int:
    """``since``: an int >= 0 (the last seq the client saw); anything else is refused."""
    if isinstance(since, bool) or not isinstance(since, int):
        raise TypeError(f"since must be an int >= 0, not {type(since).__name__}")
    if not 0 <= since <= MAX_SEQ:
        raise ValueError(f"since must be from 0 to {MAX_SEQ}, not {since}")
    return since


def check_limit(limit: Any) -> int:
    """``limit``: a positive int, or None for the ``channel_replay_limit`` setting."""
    if limit is None:
        return get_settings().channel_replay_limit
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive int, not {limit!r}")
    return limit


def plan(channel: str, since: int, limit: int, using: str | None) -> _Plan:
    """The gap frame (or None) and the frames to post, newest ``limit`` after ``since``."""
    history = (
        ChannelHistory.objects.using(using)
        .filter(channel_name=channel, enabled=True)
        .values_list("pk", "last_seq")
        .first()
    )
    if history is None:
        return _Plan(None, None, [])
    history_id, latest = history
    if since == latest:
        return _Plan(latest, None, [])
    reset = since > latest
    newest = list(
        ChannelMessage.objects.using(using)
        .filter(history_id=history_id, seq__gt=0 if reset else since)
        .order_by("-seq")
        .values_list("seq", "frame")[:limit]
    )
    newest.reverse()
    # A publish may have committed between the two reads: its frame is in, so is its seq.
    latest = max(latest, newest[-1][0]) if newest else latest
    oldest = newest[0][0] if newest else latest + 1
    gap = None
    if reset or oldest != since + 1:
        gap = gap_frame(channel, since, oldest, latest)
    return _Plan(latest, gap, [bytes(frame) for _, frame in newest])


def latest_seq(channel: str, using: str | None = None) -> int | None:
    """The channel's latest seq (0 before its first message), or None with history off.

    What a ``subscribed`` frame carries when the client sent no ``since``: its baseline, so a
    later resume asks for exactly what it missed (one query).
    """
    name = check_channel(channel)
    rows = ChannelHistory.objects.using(using).filter(channel_name=name, enabled=True)
    seq: int | None = rows.values_list("last_seq", flat=True).first()
    return seq


async def alatest_seq(channel: str, using: str | None = None) -> int | None:
    """Async twin of :func:`latest_seq`."""
    name = check_channel(channel)
    rows = ChannelHistory.objects.using(using).filter(channel_name=name, enabled=True)
    seq: int | None = await rows.values_list("last_seq", flat=True).afirst()
    return seq


def _result(latest: int | None, posted: int, gap: bytes | None, ok: bool) -> ReplayResult:
    """``posted`` counts the gap frame too; ``replayed`` counts message frames only."""
    return ReplayResult(latest, max(0, posted - (gap is not None)), gap is not None, ok)


async def areplay(
    session: WebSocketSession,
    channel: str,
    since: Any,
    *,
    limit: int | None = None,
    gone_retry_seconds: float = 0.0,
) -> ReplayResult:
    """Post ``gap`` (if needed) and the missed frames of ``channel`` to ``session``, in order.

    Reads from the session's own database. ``gone_retry_seconds`` is for a replay started
    while the connection's ``$connect`` is still being answered (410 until it completes).
    """
    name, after, bound = check_channel(channel), check_since(since), check_limit(limit)
    todo = await sync_to_async(plan)(name, after, bound, session._state.db)
    frames = ([todo.gap] if todo.gap is not None else []) + todo.frames
    posted = 0
    for frame in frames:
        wait = gone_retry_seconds if posted == 0 else 0.0
        report = await session.asend_message(frame, gone_retry_seconds=wait)
        if not report.delivered_count:
            return _result(todo.latest, posted, todo.gap, False)
        posted += 1
    return _result(todo.latest, posted, todo.gap, True)


def replay(
    session: WebSocketSession,
    channel: str,
    since: Any,
    *,
    limit: int | None = None,
    gone_retry_seconds: float = 0.0,
) -> ReplayResult:
    """Sync twin of :func:`areplay` (reads here, each post on the portal loop)."""
    name, after, bound = check_channel(channel), check_since(since), check_limit(limit)
    todo = plan(name, after, bound, session._state.db)
    frames = ([todo.gap] if todo.gap is not None else []) + todo.frames
    posted = 0
    for frame in frames:
        wait = gone_retry_seconds if posted == 0 else 0.0
        report = session.send_message(frame, gone_retry_seconds=wait)
        if not report.delivered_count:
            return _result(todo.latest, posted, todo.gap, False)
        posted += 1
    return _result(todo.latest, posted, todo.gap, True)
