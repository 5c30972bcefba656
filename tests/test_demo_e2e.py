"""End to end on loopback: aiohttp clients -> the emulator -> the demo's chat view under uvicorn.

Everything between the clients and the database is real: the emulator's integration requests,
Django's ASGI handler with its middleware, the demo's ``ChatWebSocketView``, the one-time token
view, ``asend_message`` through aiobotocore to the emulator's ``@connections`` API, and the
emulator's frames back to the clients.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from django.urls import path

from aws_ws_async.emulator import GatewayEmulator
from aws_ws_async.models import WebSocketSession
from aws_ws_async.views import WebSocketTokenView
from tests.fixtures_demo import make_client, start_demo
from tests.fixtures_emulator import DjangoServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "example"))

from chat.websocket import ChatWebSocketView

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

#: This module is the URLconf of the server under test (the demo's routes).
urlpatterns = [
    path("ws/<slug:route>", ChatWebSocketView.as_view()),
    path("ws-token/", WebSocketTokenView.as_view()),
]


async def test_two_clients_in_a_room_both_receive_a_broadcast(
    demo_stack: tuple[GatewayEmulator, DjangoServer],
) -> None:
    emulator, server = demo_stack
    async with aiohttp.ClientSession() as http:
        alice = await make_client(http, server, "alice@example.com")
        bob = await make_client(http, server, "bob@example.com")
        carol = await make_client(http, server, "carol@example.com")
        await alice.join(emulator, "room-a")
        await bob.join(emulator, "room-a")
        await carol.join(emulator, "room-b")  # another room: must hear nothing

        await alice.send("hello room a")
        for client in (alice, bob):
            message = await client.receive()
            # The channels envelope: {"type", "channel", "data"} (no "seq": history is off).
            assert message["type"] == "message"
            assert message["channel"] == "room-a"
            assert "seq" not in message
            assert message["data"]["message"] == "hello room a"
            assert message["data"]["author"] == "alice@example.com"
        with pytest.raises(TimeoutError):
            await carol.receive(timeout=0.5)

    rows = {s.connection_id: s async for s in WebSocketSession.objects.all()}
    assert set(rows) == {alice.connection_id, bob.connection_id, carol.connection_id}
    assert rows[carol.connection_id].channel_name == "room-b"


async def test_vanished_client_is_pruned_by_the_next_broadcast(
    demo_stack: tuple[GatewayEmulator, DjangoServer],
) -> None:
    emulator, server = demo_stack
    async with aiohttp.ClientSession() as http:
        alice = await make_client(http, server, "alice@example.com")
        ghost = await make_client(http, server, "ghost@example.com")
        await alice.join(emulator, "lobby")
        await ghost.join(emulator, "lobby")

        # The ghost's network vanishes: no close frame, and its $disconnect is lost.
        assert await emulator.drop(ghost.connection_id, notify_backend=False)
        row = await WebSocketSession.objects.aget(connection_id=ghost.connection_id)
        assert row.connected is True  # a stale row, exactly as a lost $disconnect leaves it

        await alice.send("anyone there?")
        assert (await alice.receive())["data"]["message"] == "anyone there?"

        row = await WebSocketSession.objects.aget(connection_id=ghost.connection_id)
        for _ in range(50):  # the report is applied right after the posts; allow it to commit
            if not row.connected:
                break
            await asyncio.sleep(0.05)
            row = await WebSocketSession.objects.aget(connection_id=ghost.connection_id)
        assert row.connected is False
        assert row.disconnect_reason == "gone"
        assert emulator.stats["gone"] >= 1
        alice_row = await WebSocketSession.objects.aget(connection_id=alice.connection_id)
        assert alice_row.connected is True  # only the vanished one was pruned


async def test_closing_client_is_marked_disconnected_by_its_disconnect(
    demo_stack: tuple[GatewayEmulator, DjangoServer],
) -> None:
    emulator, server = demo_stack
    async with aiohttp.ClientSession() as http:
        alice = await make_client(http, server, "alice@example.com")
        await alice.join(emulator, "lobby")
        assert alice.ws is not None
        await alice.ws.close()
    # The server marks the row before it answers $disconnect; the emulator records the call
    # only once it has read that answer, so wait for both (a busy machine shows the gap).
    deadline = time.monotonic() + 10
    while True:
        row = await WebSocketSession.objects.aget(connection_id=alice.connection_id)
        if (not row.connected and len(emulator.calls) >= 2) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert row.connected is False
    assert row.disconnect_reason == "client"
    assert [c.event for c in emulator.calls] == ["CONNECT", "DISCONNECT"]
    assert all(c.status == 200 for c in emulator.calls)


async def test_connect_without_a_token_is_refused_through_the_emulator(
    demo_stack: tuple[GatewayEmulator, DjangoServer],
) -> None:
    emulator, server = demo_stack
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(f"{emulator.url}?channel=lobby", headers={"Origin": server.url})
    assert info.value.status in {401, 403}
    assert await WebSocketSession.objects.acount() == 0


# --- the launcher across restarts -----------------------------------------------------------


def _log_in(url: str) -> Any:
    """A urllib opener logged in as the demo user through the demo's login form."""
    import re
    import urllib.parse
    import urllib.request
    from http.cookiejar import CookieJar

    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.jar = jar  # type: ignore[attr-defined]
    with opener.open(f"{url}/accounts/login/", timeout=10) as response:
        page = response.read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert csrf is not None
    form = {"username": "demo", "password": "demo-password", "csrfmiddlewaretoken": csrf[1]}
    request = urllib.request.Request(
        f"{url}/accounts/login/", data=urllib.parse.urlencode(form).encode()
    )
    with opener.open(request, timeout=10) as response:
        assert response.geturl() == f"{url}/", response.geturl()
    return opener


def _room_status(opener: Any, url: str, channel: str = "lobby") -> tuple[int, str, str]:
    import urllib.error

    try:
        with opener.open(f"{url}/?channel={channel}", timeout=10) as response:
            return response.status, response.geturl(), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.geturl(), error.read().decode()


@pytest.mark.django_db(transaction=False)
def test_a_restart_keeps_the_login_and_the_password(tmp_path: Path) -> None:
    """Before: every start reset the demo user's password, which changed its session auth hash
    and logged every browser out; a refused room was plain text; logging out showed the admin's
    page."""
    import urllib.request

    db = tmp_path / "demo.sqlite3"
    first = start_demo(db)
    url = first.url.rstrip("/")
    opener = _log_in(url)
    jar = opener.jar
    assert _room_status(opener, url)[:2] == (200, f"{url}/?channel=lobby")
    assert first.stop() == 0, first.text()

    second = start_demo(db)
    url = second.url.rstrip("/")
    try:
        output = second.text()
        assert "existing user, password unchanged" in output
        # Cookies belong to the host, not the port: the first run's session cookie is sent.
        status, landed, _ = _room_status(opener, url)
        assert (status, landed) == (200, f"{url}/?channel=lobby")
        # The room name refused: a styled 400 page naming it, not plain text.
        status, _, page = _room_status(opener, url, "bad%20room")
        assert status == 400
        assert 'id="refused"' in page
        assert "bad room" in page
        assert "chat.css" in page
        # Logging out lands on the demo's own styled page (not the admin's).
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        request = urllib.request.Request(
            f"{url}/accounts/logout/",
            data=f"csrfmiddlewaretoken={csrf}".encode(),
            headers={"Referer": url},
        )
        with opener.open(request, timeout=10) as response:
            page = response.read().decode()
        assert 'id="logged-out"' in page
        assert "chat.css" in page
        assert _room_status(opener, url)[1].startswith(f"{url}/accounts/login/")
    finally:
        assert second.stop() == 0, second.text()
