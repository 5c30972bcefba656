"""End to end on loopback: aiohttp clients -> the emulator -> the demo's chat view under uvicorn.

Everything between the clients and the database is real: the emulator's integration requests,
Django's ASGI handler with its middleware, the demo's ``ChatWebSocketView``, the one-time token
view, ``asend_message`` through aiobotocore to the emulator's ``@connections`` API, and the
emulator's frames back to the clients.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.urls import path

from aws_ws_async.emulator import EmulatorConfig, GatewayEmulator
from aws_ws_async.models import ApiGateway, WebSocketSession
from aws_ws_async.views import WebSocketTokenView
from tests.fixtures_emulator import DjangoServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "example"))

from chat.websocket import ChatWebSocketView

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

#: This module is the URLconf of the server under test (the demo's routes).
urlpatterns = [
    path("ws/<slug:route>", ChatWebSocketView.as_view()),
    path("ws-token/", WebSocketTokenView.as_view()),
]

API_ID = "e2edemo"
STAGE = "e2e"
SECRET = "e2e-gateway-secret-" + "x" * 24


class Client:
    """One browser-like user: a session cookie, a token, and a socket through the emulator."""

    def __init__(self, http: aiohttp.ClientSession, server: DjangoServer, cookie: str) -> None:
        self.http = http
        self.server = server
        self.csrf = secrets.token_hex(16)
        self.cookie = f"{cookie}; csrftoken={self.csrf}"
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.connection_id = ""
        #: Presence frames seen while waiting for others (the demo turns join/leave events on).
        self.presence: list[dict[str, Any]] = []

    async def token(self) -> str:
        async with self.http.post(
            f"{self.server.url}/ws-token/",
            headers={"Cookie": self.cookie, "X-CSRFToken": self.csrf},
        ) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["token"])

    async def join(self, emulator: GatewayEmulator, channel: str) -> dict[str, Any]:
        before = set(emulator.connection_ids())
        self.ws = await self.http.ws_connect(
            f"{emulator.url}?channel={channel}&ws_token={await self.token()}",
            headers={"Cookie": self.cookie, "Origin": self.server.url},
        )
        [self.connection_id] = set(emulator.connection_ids()) - before
        welcome = await self.receive()
        assert welcome["type"] == "welcome"
        assert welcome["channel"] == channel
        return welcome

    async def send(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"action": "send_message", "message": text}))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        """The next frame that is not a presence event (those are kept in ``presence``)."""
        assert self.ws is not None
        while True:
            message = await asyncio.wait_for(self.ws.receive(), timeout)
            assert message.type is aiohttp.WSMsgType.TEXT, message
            frame = dict(json.loads(message.data))
            if frame.get("type") != "presence":
                return frame
            self.presence.append(frame)


@pytest.fixture
async def stack(
    settings: Any, django_asgi_server: DjangoServer
) -> AsyncIterator[tuple[GatewayEmulator, DjangoServer]]:
    settings.ROOT_URLCONF = __name__
    emulator = GatewayEmulator(
        EmulatorConfig(
            f"{django_asgi_server.url}/ws/", api_id=API_ID, stage=STAGE, gateway_secret=SECRET
        )
    )
    await emulator.start()
    settings.AWS_WS_ASYNC = {
        **settings.AWS_WS_ASYNC,
        "gateway_secret": SECRET,
        "management_endpoint_url": emulator.management_url.replace(f"/{STAGE}", "/{stage}"),
    }
    await ApiGateway.objects.acreate(
        api_name="E2E demo",
        api_id=API_ID,
        stage_name=STAGE,
        target_base_endpoint=f"{django_asgi_server.url}/ws/",
    )
    try:
        yield emulator, django_asgi_server
    finally:
        await emulator.stop()


async def make_client(http: aiohttp.ClientSession, server: DjangoServer, email: str) -> Client:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    manager = get_user_model()._default_manager
    user = await sync_to_async(manager.create_user)(email=email, password="pw-12345!")
    django_client = AsyncClient()
    await django_client.aforce_login(user)
    cookie = django_client.cookies[settings.SESSION_COOKIE_NAME].value
    return Client(http, server, f"{settings.SESSION_COOKIE_NAME}={cookie}")


async def test_two_clients_in_a_room_both_receive_a_broadcast(
    stack: tuple[GatewayEmulator, DjangoServer],
) -> None:
    emulator, server = stack
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
    stack: tuple[GatewayEmulator, DjangoServer],
) -> None:
    emulator, server = stack
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
    stack: tuple[GatewayEmulator, DjangoServer],
) -> None:
    emulator, server = stack
    async with aiohttp.ClientSession() as http:
        alice = await make_client(http, server, "alice@example.com")
        await alice.join(emulator, "lobby")
        assert alice.ws is not None
        await alice.ws.close()
    for _ in range(100):
        row = await WebSocketSession.objects.aget(connection_id=alice.connection_id)
        if not row.connected:
            break
        await asyncio.sleep(0.05)
    assert row.connected is False
    assert row.disconnect_reason == "client"
    assert [c.event for c in emulator.calls] == ["CONNECT", "DISCONNECT"]
    assert all(c.status == 200 for c in emulator.calls)


async def test_connect_without_a_token_is_refused_through_the_emulator(
    stack: tuple[GatewayEmulator, DjangoServer],
) -> None:
    emulator, server = stack
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(f"{emulator.url}?channel=lobby", headers={"Origin": server.url})
    assert info.value.status in {401, 403}
    assert await WebSocketSession.objects.acount() == 0


# --- the launcher across restarts -----------------------------------------------------------


class Launched:
    """``example/run_demo.py`` in a subprocess, as a user starts it, on free ports."""

    def __init__(self, db: Path, *extra: str) -> None:
        import os
        import subprocess

        from tests.conftest import free_port

        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        root = Path(__file__).resolve().parent.parent
        ports = ["--port", str(self.port), "--gateway-port", str(free_port())]
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(root / "example" / "run_demo.py"),
                *ports,
                "--db",
                str(db),
                *extra,
            ],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "Press Ctrl-C to stop" in line:
                break
        assert self.process.poll() is None, "".join(self.lines)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> str:
        import signal

        self.process.send_signal(signal.SIGINT)
        rest, _ = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, "".join(self.lines) + rest
        return "".join(self.lines) + rest


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
    first = Launched(db)
    opener = _log_in(first.url)
    jar = opener.jar
    assert _room_status(opener, first.url)[:2] == (200, f"{first.url}/?channel=lobby")
    first.stop()

    second = Launched(db)
    try:
        output = "".join(second.lines)
        assert "existing user, password unchanged" in output
        # Cookies belong to the host, not the port: the first run's session cookie is sent.
        status, landed, _ = _room_status(opener, second.url)
        assert (status, landed) == (200, f"{second.url}/?channel=lobby")
        # The room name refused: a styled 400 page naming it, not plain text.
        status, _, page = _room_status(opener, second.url, "bad%20room")
        assert status == 400
        assert 'id="refused"' in page
        assert "bad room" in page
        assert "chat.css" in page
        # Logging out lands on the demo's own styled page (not the admin's).
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        request = urllib.request.Request(
            f"{second.url}/accounts/logout/",
            data=f"csrfmiddlewaretoken={csrf}".encode(),
            headers={"Referer": second.url},
        )
        with opener.open(request, timeout=10) as response:
            page = response.read().decode()
        assert 'id="logged-out"' in page
        assert "chat.css" in page
        assert _room_status(opener, second.url)[1].startswith(f"{second.url}/accounts/login/")
    finally:
        second.stop()
