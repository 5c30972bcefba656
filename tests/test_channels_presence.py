"""Presence: who is online in a channel (one query), and join/leave events through the view.

Events go out through the in-memory transport (the HTTP boundary) and are read from its
``network``; the requests go through Django's ASGI handler as API Gateway sends them.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import path
from django.utils import timezone

from aws_ws_async.channels import Presence, PresenceUser, apresence, presence
from aws_ws_async.models import ChannelSubscription, WebSocketSession
from aws_ws_async.testing import network
from aws_ws_async.views.background import wait_for_background_tasks
from tests.fixtures_channels import open_session, send
from tests.fixtures_views import (
    EchoView,
    QueryLog,
    gateway_headers,
    login_browser,
    post,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


class PresenceView(EchoView):
    PRESENCE_EVENTS = True


class NamedPresenceView(PresenceView):
    PRESENCE_DISPLAY_FIELD = "id"  # the test user model has only an email


urlpatterns = [
    path("ws/<slug:route>", PresenceView.as_view()),  # the shared helpers' default prefix
    path("ws-plain/<slug:route>", EchoView.as_view()),
    path("ws-named/<slug:route>", NamedPresenceView.as_view()),
]


def make_user(email: str, **fields: Any) -> Any:
    return get_user_model()._default_manager.create_user(
        email=email, password="pw-presence-1", **fields
    )


_counter = iter(range(10**6))


def add_session(user: Any, channels: list[str], gateway: Any = None, **fields: Any) -> Any:
    session = WebSocketSession.objects.create(
        connection_id=f"pres{next(_counter):06d}AAAA=",
        user=user,
        api_gateway=gateway,
        channel_name=channels[0] if channels else "",
        **fields,
    )
    for channel in channels:
        ChannelSubscription.objects.create(session=session, channel_name=channel)
    return session


def scene() -> None:
    alice, bob = make_user("alice@example.com"), make_user("bob@example.com")
    carol = make_user("carol@example.com")
    old = timezone.now() - timedelta(hours=3)
    add_session(alice, ["room"])
    add_session(alice, ["lobby", "room"])  # a second tab, room as a second channel
    add_session(bob, ["room"])
    add_session(None, ["room"])  # anonymous
    add_session(carol, ["room"], connected=False)  # closed
    add_session(carol, ["room"], connected_at=old, last_seen_at=old)  # past the 2-hour cap
    add_session(carol, ["room"], last_seen_at=timezone.now() - timedelta(minutes=30))  # idle
    add_session(carol, ["lobby"])  # another channel


EXPECTED = Presence(
    "room",
    users=[PresenceUser("alice@example.com", 2), PresenceUser("bob@example.com", 1)],
    connections=4,
    count=2,
    anonymous=1,
)


def without_ids(result: Presence) -> Presence:
    users = [PresenceUser(u.user, u.connections) for u in result.users]
    return Presence(result.channel, users, result.connections, result.count, result.anonymous)


def test_presence_counts_users_once_in_one_query(db: None) -> None:
    scene()
    with CaptureQueriesContext(connection) as queries:
        result = presence("room")
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert without_ids(result) == EXPECTED
    assert [u.user_id is not None for u in result.users] == [True, True]
    assert result.frame() == {
        "type": "presence",
        "channel": "room",
        "event": "snapshot",
        "users": [
            {"user": "alice@example.com", "connections": 2},
            {"user": "bob@example.com", "connections": 1},
        ],
        "count": 2,
    }
    lobby = presence("lobby")
    assert [(u.user, u.connections) for u in lobby.users] == [
        ("alice@example.com", 1),
        ("carol@example.com", 1),
    ]
    assert presence("empty") == Presence("empty")


async def test_apresence_is_one_query_too(query_log: QueryLog) -> None:
    await sync_to_async(scene)()
    await sync_to_async(query_log.install_here)()  # the ORM thread's connection may be older
    with query_log.recording() as queries:
        result = await apresence("room")
    assert len(queries) == 1, queries
    assert without_ids(result) == EXPECTED


def test_presence_display_field_and_bad_input(db: None) -> None:
    dora = make_user("d@example.com")
    add_session(dora, ["room"])
    assert [u.user for u in presence("room", display_field="id").users] == [str(dora.pk)]
    with pytest.raises(TypeError, match="channel must be a str"):
        presence(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid channel name"):
        presence("a b")


def test_stale_cleanup_and_presence_agree(db: None) -> None:
    """Presence counts exactly the connected rows ``stale()`` would not flag."""
    scene()
    live = presence("room").connections
    in_room = WebSocketSession.objects.subscribed_to("room")
    assert in_room.count() - in_room.stale().count() == live == 4


# --- join / leave events through the real view ---------------------------------------------


async def disconnect(cid: str, prefix: str = "/ws") -> None:
    response = await post(f"{prefix}/disconnect", gateway_headers(cid))
    assert response.status_code == 200, response.content


async def alogin(user: Any) -> Any:
    return await sync_to_async(login_browser)(user)


def events(cid: str) -> list[tuple[str, str, int, int]]:
    found = [json.loads(body) for body in network.posts_to(cid)]
    return [
        (f["event"], f["user"], f["connections"], f["count"])
        for f in found
        if f.get("type") == "presence" and f.get("event") != "snapshot"
    ]


async def test_join_and_leave_per_user_not_per_tab(memory: Any, gateway: Any) -> None:
    alice = await sync_to_async(make_user)("alice@example.com")
    bob = await sync_to_async(make_user)("bob@example.com")
    alice_browser, bob_browser = await alogin(alice), await alogin(bob)
    watcher = await open_session(bob_browser, "room")
    await wait_for_background_tasks()

    tab1 = await open_session(alice_browser, "room")
    await wait_for_background_tasks()
    tab2 = await open_session(alice_browser, "room")  # a second tab: no second join
    await wait_for_background_tasks()
    await disconnect(tab1)  # one tab left open: no leave
    await wait_for_background_tasks()
    assert events(watcher) == [("join", "alice@example.com", 1, 2)]
    # The joining socket itself is never posted to during its $connect.
    assert events(tab1) == []
    await disconnect(tab2)
    await wait_for_background_tasks()
    assert events(watcher) == [
        ("join", "alice@example.com", 1, 2),
        ("leave", "alice@example.com", 0, 1),
    ]
    assert [c.connection_id for c in network.posts] == [watcher, watcher]


async def test_subscribe_and_unsubscribe_announce(memory: Any, gateway: Any) -> None:
    alice = await sync_to_async(make_user)("alice@example.com")
    bob = await sync_to_async(make_user)("bob@example.com")
    watcher = await open_session(await alogin(bob), "news")
    mover = await open_session(await alogin(alice), "room")
    await wait_for_background_tasks()
    network.reset()

    assert (await send(mover, {"action": "subscribe", "channel": "news"})).status_code == 200
    await wait_for_background_tasks()
    assert events(watcher) == [("join", "alice@example.com", 1, 2)]
    assert (await send(mover, {"action": "subscribe", "channel": "news"})).status_code == 200
    assert (await send(mover, {"action": "unsubscribe", "channel": "news"})).status_code == 200
    await wait_for_background_tasks()
    assert events(watcher) == [
        ("join", "alice@example.com", 1, 2),
        ("leave", "alice@example.com", 0, 1),
    ]
    # After leaving news, alice's disconnect announces nothing there.
    await disconnect(mover)
    await wait_for_background_tasks()
    assert len(events(watcher)) == 2


async def test_no_events_unless_switched_on(memory: Any, gateway: Any, browser: Any) -> None:
    bob = await sync_to_async(make_user)("bob@example.com")
    watcher = await open_session(await alogin(bob), "room", prefix="/ws-plain")
    cid = await open_session(browser, "room", prefix="/ws-plain")
    await disconnect(cid, prefix="/ws-plain")
    await wait_for_background_tasks()
    assert events(watcher) == []


async def test_presence_action_posts_a_snapshot(memory: Any, gateway: Any) -> None:
    dora = await sync_to_async(make_user)("dora@example.com")
    cid = await open_session(await alogin(dora), "room", prefix="/ws-named")
    other = await open_session(await alogin(dora), "room", prefix="/ws-named")
    await wait_for_background_tasks()
    network.reset()
    response = await send(cid, {"action": "presence", "channel": "room"}, prefix="/ws-named")
    assert (response.status_code, response.json()) == (200, {"count": 1, "connections": 2})
    await wait_for_background_tasks()
    assert [json.loads(b) for b in network.posts_to(cid)] == [
        {
            "type": "presence",
            "channel": "room",
            "event": "snapshot",
            "users": [{"user": str(dora.pk), "connections": 2}],
            "count": 1,
        }
    ]
    assert network.posts_to(other) == []
    # Events name the user the same way as the snapshot.
    bob = await sync_to_async(make_user)("bob@example.com")
    await open_session(await alogin(bob), "room", prefix="/ws-named")
    await wait_for_background_tasks()
    assert events(cid) == [("join", str(bob.pk), 1, 2)]
    # Only for a channel the connection is in; a bad name is a 400.
    response = await send(cid, {"action": "presence", "channel": "elsewhere"}, prefix="/ws-named")
    assert (response.status_code, response.json()["error"]) == (403, "permission_denied")
    response = await send(cid, {"action": "presence", "channel": "a b"}, prefix="/ws-named")
    assert response.status_code == 400


def test_a_huge_snapshot_is_cut_to_fit_one_post() -> None:
    from aws_ws_async.delivery import encode_payload

    users = [PresenceUser(f"{'x' * 200}{i:05d}@example.com", 1) for i in range(5000)]
    big = Presence("room", users, connections=5000, count=5000)
    frame = big.frame()
    assert frame["truncated"] is True
    assert frame["count"] == 5000
    assert 500 < len(frame["users"]) < 5000
    assert len(encode_payload(frame)) <= 131072  # would raise PayloadTooLarge otherwise
    assert (
        frame["users"] == [{"user": u.user, "connections": 1} for u in users][: len(frame["users"])]
    )
    small = Presence("room", users[:3], connections=3, count=3).frame()
    assert "truncated" not in small
    assert len(small["users"]) == 3


async def test_a_second_tab_costs_one_small_query(memory: Any, query_log: QueryLog) -> None:
    """The decision reads only the user's own connections; the channel-wide count of users
    online is read only when an event is due."""
    from aws_ws_async.channels.events import aannounce

    await sync_to_async(scene)()  # alice has two live connections in "room"
    alice_tab = await WebSocketSession.objects.filter(
        user__email="alice@example.com", channel_name="room"
    ).afirst()
    assert alice_tab is not None
    await sync_to_async(query_log.install_here)()
    with query_log.recording() as queries:
        assert await aannounce(alice_tab, "room", "join", "alice@example.com") is None
    assert len(queries) == 1, queries
    assert "COUNT(DISTINCT" not in queries[0].upper()
    carol = await WebSocketSession.objects.filter(
        user__email="carol@example.com", channel_name="lobby"
    ).aget()
    report = await aannounce(carol, "lobby", "join", "carol@example.com")
    assert report is not None  # her only live connection in lobby: a join is due
