"""Resume (``areplay`` / ``replay``), gap frames, pruning by count and age, the admin pages.

Frames are posted to the fault endpoint over real HTTP; what one connection received is
``endpoint.received[connection_id]``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.utils import timezone

from aws_ws_async.channels import ReplayResult, apublish, areplay, publish, replay
from aws_ws_async.models import (
    ChannelHistory,
    ChannelMessage,
    ChannelSubscription,
    WebSocketSession,
)
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway, make_sessions

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_async_db_connections"),
]


def room(published: int, *, channel: str = "room", **history: Any) -> WebSocketSession:
    """A channel with history and ``published`` messages kept; returns a fresh subscriber."""
    ChannelHistory.objects.create(channel_name=channel, **history)
    gateway = make_gateway()
    for n in range(1, published + 1):
        publish(channel, {"n": n})
    [cid] = make_sessions(gateway, 1, channel=channel, prefix="late")  # subscribed
    session = WebSocketSession.objects.get(connection_id=cid)
    return session


def got(endpoint: FaultEndpoint, session: WebSocketSession) -> list[dict[str, Any]]:
    return [json.loads(body) for body in endpoint.received[session.connection_id]]


def seqs(frames: list[dict[str, Any]]) -> list[int]:
    return [f["seq"] for f in frames if f["type"] == "message"]


async def test_replay_posts_what_was_missed_in_order_to_that_connection_only(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    session = await sync_to_async(room)(10)
    result = await areplay(session, "room", 6)
    assert result == ReplayResult(latest_seq=10, replayed=4, gap=False)
    frames = got(fault_endpoint, session)
    assert seqs(frames) == [7, 8, 9, 10]
    assert [f["data"] for f in frames] == [{"n": n} for n in (7, 8, 9, 10)]
    assert list(fault_endpoint.received) == [session.connection_id]


async def test_replay_of_a_client_up_to_date_or_history_off_posts_nothing(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    session = await sync_to_async(room)(3)
    assert await areplay(session, "room", 3) == ReplayResult(3, 0, False)
    assert await areplay(session, "no-history", 0) == ReplayResult(None, 0, False)
    await ChannelHistory.objects.filter(channel_name="room").aupdate(enabled=False)
    assert await areplay(session, "room", 0) == ReplayResult(None, 0, False)
    assert fault_endpoint.requests == 0


async def test_pruned_history_posts_gap_first_then_replays_from_the_oldest(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    session = await sync_to_async(room)(12, max_messages=5)
    await sync_to_async(call_command)("cleanup_websocket_tokens", stdout=StringIO())

    result = await areplay(session, "room", 2)

    assert result == ReplayResult(latest_seq=12, replayed=5, gap=True)
    frames = got(fault_endpoint, session)
    assert frames[0] == {"type": "gap", "channel": "room", "since": 2, "oldest": 8, "seq": 12}
    assert seqs(frames[1:]) == [8, 9, 10, 11, 12]


async def test_since_just_before_the_oldest_kept_is_no_gap(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    session = await sync_to_async(room)(12, max_messages=5)
    await sync_to_async(call_command)("cleanup_websocket_tokens", stdout=StringIO())
    assert await areplay(session, "room", 7) == ReplayResult(12, 5, False)


async def test_more_missed_than_the_limit_is_a_gap_with_the_newest_replayed(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    session = await sync_to_async(room)(9)
    assert await areplay(session, "room", 1, limit=3) == ReplayResult(9, 3, True)
    frames = got(fault_endpoint, session)
    assert (frames[0]["type"], frames[0]["oldest"]) == ("gap", 7)
    assert seqs(frames) == [7, 8, 9]


async def test_since_beyond_the_latest_seq_is_a_gap_and_replays_everything_kept(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    session = await sync_to_async(room)(2)
    assert await areplay(session, "room", 50) == ReplayResult(2, 2, True)
    frames = got(fault_endpoint, session)
    assert frames[0] == {"type": "gap", "channel": "room", "since": 50, "oldest": 1, "seq": 2}
    assert seqs(frames) == [1, 2]


async def test_everything_pruned_by_age_is_a_gap_with_nothing_to_replay(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    session = await sync_to_async(room)(4, max_age=timedelta(seconds=60))
    old = timezone.now() - timedelta(minutes=5)
    await ChannelMessage.objects.aupdate(created_at=old)
    await sync_to_async(call_command)("cleanup_websocket_tokens", stdout=StringIO())
    assert await areplay(session, "room", 1) == ReplayResult(4, 0, True)
    assert got(fault_endpoint, session) == [
        {"type": "gap", "channel": "room", "since": 1, "oldest": 5, "seq": 4}
    ]


async def test_replay_stops_at_a_gone_connection(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    session = await sync_to_async(room)(5)
    fault_endpoint.plan.gone = {session.connection_id}
    result = await areplay(session, "room", 0)
    assert (result.replayed, result.complete) == (0, False)
    assert fault_endpoint.calls[session.connection_id] == 1  # not once per frame
    await session.arefresh_from_db()
    assert (session.connected, session.disconnect_reason) == (False, "gone")


@pytest.mark.parametrize(
    ("since", "error"),
    [(-1, ValueError), (2**63, ValueError), ("3", TypeError), (True, TypeError), (None, TypeError)],
)
async def test_invalid_since_is_refused_before_anything_is_read(
    fault_settings: Any, fault_endpoint: FaultEndpoint, since: Any, error: type[Exception]
) -> None:
    session = await sync_to_async(room)(1)
    with pytest.raises(error, match="since"):
        await areplay(session, "room", since)
    assert fault_endpoint.requests == 0


def test_sync_replay(threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint) -> None:
    session = room(3)
    assert replay(session, "room", 1) == ReplayResult(3, 2, False)
    assert seqs(got(threaded_fault_endpoint, session)) == [2, 3]


async def test_a_message_published_before_the_subscription_is_replayed_after_it(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    """The ordering rule: publish committed first, subscription after -> the replay has it."""
    session = await sync_to_async(room)(0)
    await ChannelSubscription.objects.filter(session=session).adelete()
    live = await apublish("room", "while away")  # nobody subscribed yet: posted to no one
    assert live.delivery.total == 0
    await ChannelSubscription.objects.acreate(session=session, channel_name="room")
    assert await areplay(session, "room", 0) == ReplayResult(1, 1, False)
    assert got(fault_endpoint, session)[0]["data"] == "while away"


# --- pruning -------------------------------------------------------------------------------


def test_cleanup_prunes_by_count_and_age_and_keeps_the_counters(
    threaded_fault_settings: Any,
) -> None:
    room(8, max_messages=3)  # seqs 1..8, keeps 6..8
    ChannelHistory.objects.create(channel_name="aged", max_age=timedelta(hours=1))
    for n in range(4):
        publish("aged", n)
    ChannelMessage.objects.filter(history__channel_name="aged", seq__lte=2).update(
        created_at=timezone.now() - timedelta(hours=2)
    )
    ChannelHistory.objects.create(channel_name="off", enabled=False, last_seq=0)
    ChannelHistory.objects.filter(channel_name="off").update(enabled=True)
    publish("off", "x")
    ChannelHistory.objects.filter(channel_name="off").update(enabled=False)

    out = StringIO()
    call_command("cleanup_websocket_tokens", "--dry-run", stdout=out)
    assert "Would delete 8 channel message(s) past their history bounds in 3" in out.getvalue()
    assert ChannelMessage.objects.count() == 13

    out = StringIO()
    call_command("cleanup_websocket_tokens", "--batch-size", "2", stdout=out)
    assert "Deleted 8 channel message(s) past their history bounds in 3 channel(s)" in (
        out.getvalue()
    )
    kept = {
        name: sorted(seqs_)
        for name, seqs_ in (
            (h.channel_name, h.messages.values_list("seq", flat=True))
            for h in ChannelHistory.objects.all()
        )
    }
    assert kept == {"room": [6, 7, 8], "aged": [3, 4], "off": []}
    counters = dict(ChannelHistory.objects.values_list("channel_name", "last_seq"))
    assert counters == {"room": 8, "aged": 4, "off": 1}
    assert publish("room", "next").seq == 9  # seqs never restart


# --- admin ---------------------------------------------------------------------------------


def test_admin_lists_histories_and_kept_messages(
    admin_client: Any, threaded_fault_settings: Any
) -> None:
    room(2)
    history = ChannelHistory.objects.get()
    page = admin_client.get("/admin/aws_ws_async/channelhistory/")
    assert page.status_code == 200
    assert b"room" in page.content
    change = admin_client.get(f"/admin/aws_ws_async/channelhistory/{history.pk}/change/")
    assert change.status_code == 200
    assert b'name="max_messages"' in change.content
    assert b'name="channel_name"' not in change.content  # fixed once the row exists
    messages = admin_client.get(
        f"/admin/aws_ws_async/channelmessage/?history__id__exact={history.pk}"
    )
    assert messages.status_code == 200
    assert b"&quot;seq&quot;:2" in messages.content or b'"seq":2' in messages.content
    add = admin_client.get("/admin/aws_ws_async/channelmessage/add/")
    assert add.status_code == 403
    # the counter row is never deleted from the admin (seqs would restart)
    delete = admin_client.get(f"/admin/aws_ws_async/channelhistory/{history.pk}/delete/")
    assert delete.status_code == 403


async def test_latest_seq_is_the_baseline_of_a_subscribe_without_since(
    fault_settings: Any,
) -> None:
    from aws_ws_async.channels.history import alatest_seq, latest_seq

    await sync_to_async(room)(3)
    await ChannelHistory.objects.acreate(channel_name="fresh")
    await ChannelHistory.objects.acreate(channel_name="off", enabled=False, last_seq=9)
    assert await alatest_seq("room") == 3
    assert await alatest_seq("fresh") == 0
    assert await alatest_seq("off") is None
    assert await alatest_seq("none") is None
    assert await sync_to_async(latest_seq)("room") == 3
    with pytest.raises(ValueError, match="channel"):
        await alatest_seq("bad name")


async def test_the_replay_bound_defaults_to_the_setting(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    fault_settings.AWS_WS_ASYNC = {**fault_settings.AWS_WS_ASYNC, "channel_replay_limit": 2}
    session = await sync_to_async(room)(6)
    assert await areplay(session, "room", 0) == ReplayResult(6, 2, True)
    assert seqs(got(fault_endpoint, session)) == [5, 6]
    with pytest.raises(ValueError, match="limit"):
        await areplay(session, "room", 0, limit=0)
