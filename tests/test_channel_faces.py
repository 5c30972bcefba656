"""Every face that sends "to a channel" reaches the channel's subscribers, not its first members.

Since a connection can subscribe to many channels, ``WebSocketSession.channel_name`` is only its
*first* channel (kept when it is left). The admin's send-to-channel form, its counts and links,
the "channel of the selected" action and ``manage.py send_websocket_message --channel`` must all
mean "subscribed to" (``subscribed_to``): the same five connections in each test --

* ``first``: connected on ``room`` (its ``$connect`` subscription row);
* ``later``: connected on ``lobby``, then subscribed to ``room``: must receive;
* ``left``: connected on ``room``, then unsubscribed from it (``channel_name`` still ``room``):
  must not receive;
* ``lobby``: on ``lobby`` only; ``closed``: subscribed to ``room`` but disconnected.

The subscription writes are the application's own (``aws_ws_async.channels.subscriptions``);
``@connections`` is the threaded FaultEndpoint (AWS at the HTTP boundary only). The same faces
under real servers and the command as a subprocess are in ``tests/test_e2e_admin.py``.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from aws_ws_async.channels.subscriptions import subscribe, unsubscribe
from aws_ws_async.models import Broadcast, WebSocketSession
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway, make_sessions
from tests.fixtures_scaleout import backend

CHANGELIST = "admin:aws_ws_async_websocketsession_changelist"
SEND_TO_CHANNEL = "admin:aws_ws_async_websocketsession_send_to_channel"
REACHED = ["first", "later"]


def five_connections() -> dict[str, WebSocketSession]:
    """The five connections of the module docstring, by role."""
    gateway = make_gateway()
    make_sessions(gateway, 1, channel="room", prefix="first")
    make_sessions(gateway, 1, channel="lobby", prefix="later")
    make_sessions(gateway, 1, channel="room", prefix="left")
    make_sessions(gateway, 1, channel="lobby", prefix="lobby")
    make_sessions(gateway, 1, channel="lobby", prefix="closed")
    rows = {s.connection_id[:-6]: s for s in WebSocketSession.objects.all()}
    assert subscribe(rows["later"], "room", cap=10).value == "created"
    assert unsubscribe(rows["left"], "room")
    assert subscribe(rows["closed"], "room", cap=10).value == "created"
    assert rows["closed"].mark_disconnected()
    return rows


def got(endpoint: FaultEndpoint, rows: dict[str, WebSocketSession]) -> dict[str, list[bytes]]:
    """What each role's connection received (roles that received nothing left out)."""
    received = {role: endpoint.received.get(s.connection_id, []) for role, s in rows.items()}
    return {role: bodies for role, bodies in received.items() if bodies}


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


# --- the admin -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_send_to_channel_reaches_later_subscribers_and_not_those_who_left(
    admin_client: Client, threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    rows = five_connections()
    response = admin_client.post(
        reverse(SEND_TO_CHANNEL),
        {"channel": "room", "format": "text", "message": "to the room"},
        follow=True,
    )
    assert messages_of(response) == [
        ("success", "Send to channel 'room': 2 session(s): 2 delivered, 0 already gone, 0 failed.")
    ]
    assert got(threaded_fault_endpoint, rows) == {role: [b"to the room"] for role in REACHED}
    # back on the changelist, filtered to whom it was sent to
    listed = {s.connection_id for s in response.context["cl"].result_list}
    assert listed == {rows[role].connection_id for role in REACHED}


@pytest.mark.django_db(transaction=True)
def test_admin_send_to_channel_enqueued_reaches_the_same_audience(
    admin_client: Client, small_shards: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    """With a task backend the form stores the selection (a pickled query) for the workers."""
    small_shards.TASKS = backend("Immediate")
    rows = five_connections()
    response = admin_client.post(
        reverse(SEND_TO_CHANNEL), {"channel": "room", "format": "json", "message": '{"n": 1}'}
    )
    assert response.status_code == 302
    broadcast = Broadcast.objects.get()
    assert (broadcast.status, broadcast.recipients, broadcast.delivered) == ("finished", 2, 2)
    assert got(threaded_fault_endpoint, rows) == {role: [b'{"n":1}'] for role in REACHED}


@pytest.mark.django_db
def test_changelist_counts_a_channels_subscribers_and_links_to_them(admin_client: Client) -> None:
    rows = five_connections()
    response = admin_client.get(reverse(CHANGELIST))
    counts = {r["name"]: r for r in response.context["connection_counts"]["channels"]}
    # later counts in both of its channels; left in none (not in room); closed nowhere
    assert {name: r["count"] for name, r in counts.items()} == {"room": 2, "lobby": 2, "": 1}
    for name, members in [("room", REACHED), ("lobby", ["later", "lobby"]), ("", ["left"])]:
        page = admin_client.get(counts[name]["url"])
        listed = {s.connection_id for s in page.context["cl"].result_list}
        assert listed == {rows[role].connection_id for role in members}, name


@pytest.mark.django_db
def test_channel_of_selected_is_the_channel_they_share_not_their_first_channel(
    admin_client: Client,
) -> None:
    rows = five_connections()

    def opened(*roles: str) -> str:
        selected = [str(rows[role].pk) for role in roles]
        data = {"action": "send_to_channel_of_selected", "_selected_action": selected}
        response = admin_client.post(reverse(CHANGELIST), {"index": "0", **data})
        assert response.status_code == 302
        return str(response["Location"])

    form = reverse(SEND_TO_CHANNEL)
    assert opened("first", "later") == form + "?channel=room"  # first channels room and lobby
    assert opened("later", "lobby") == form + "?channel=lobby"  # share lobby (their first) only
    assert opened("later") == form + "?channel=lobby"  # two channels: its first one
    assert opened("first", "left") == form  # left has left room: nothing shared


# --- the command -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_command_channel_reaches_later_subscribers_and_not_those_who_left(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    rows = five_connections()
    out = StringIO()
    call_command("send_websocket_message", "--channel", "room", '{"cmd": 1}', stdout=out)
    assert "Sending to 2 connected session(s)..." in out.getvalue()
    assert "2 delivered, 0 gone, 0 failed" in out.getvalue()
    assert got(threaded_fault_endpoint, rows) == {role: [b'{"cmd":1}'] for role in REACHED}


@pytest.mark.django_db(transaction=True)
def test_command_channel_enqueued_reaches_the_same_audience(
    small_shards: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    small_shards.TASKS = backend("Immediate")
    rows = five_connections()
    out = StringIO()
    call_command(
        "send_websocket_message", "--channel", "room", "--enqueue", "--text", "q", stdout=out
    )
    assert "finished: 2/2 (2 delivered, 0 gone, 0 failed; 1 shard(s))" in out.getvalue()
    assert got(threaded_fault_endpoint, rows) == {role: [b"q"] for role in REACHED}
