"""``aws_ws_async.testing``'s client and its ``ws_client`` fixture, against real views.

The backend is this project's ASGI application under uvicorn (the demo chat's view, so a
broadcast really goes out through ``@connections``), behind the emulator; the client logs in,
fetches its token through the CSRF-protected token view and talks over a real socket.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import views as auth_views
from django.urls import path

from aws_ws_async.emulator import EmulatorConfig
from aws_ws_async.models import ApiGateway, WebSocketSession
from aws_ws_async.testing import (
    ConnectionClosed,
    ConnectRefused,
    LoginFailed,
    WebSocketTestClient,
)
from aws_ws_async.views import WebSocketTokenView
from tests.fixtures_channels import serve_urlconf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "example"))

from chat.websocket import ChatWebSocketView

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

urlpatterns = [
    path("ws/<slug:route>", ChatWebSocketView.as_view()),
    path("ws-token/", WebSocketTokenView.as_view()),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="admin/login.html")),
]


@pytest.fixture
def ws_gateway_emulator_config(asgi_server_factory: Any, settings: Any) -> EmulatorConfig:
    return serve_urlconf(asgi_server_factory, settings, __name__)


async def make_user(email: str = "c@example.com", password: str = "pw-client-1!") -> Any:
    from django.contrib.auth import get_user_model

    manager = get_user_model()._default_manager
    return await sync_to_async(manager.create_user)(email=email, password=password)


async def next_non_presence(client: WebSocketTestClient) -> Any:
    """The next frame that is not a presence event (the demo announces joins and leaves)."""
    message = await client.receive_json(timeout=10)
    while message["type"] == "presence":
        message = await client.receive_json(timeout=10)
    return message


async def test_a_user_connects_and_hears_its_broadcast(ws_client: Any) -> None:
    alice, bob = await make_user("a@example.com"), await make_user("b@example.com")
    async with (
        ws_client(user=alice, channel="lobby") as a,
        ws_client(user=bob, channel="lobby") as b,
    ):
        # Bob's join (presence) can reach Alice before her own welcome: both are posted by
        # background tasks once the sockets are open, in no guaranteed order.
        assert (await next_non_presence(a))["type"] == "welcome"
        assert (await next_non_presence(b))["type"] == "welcome"
        await a.send_json({"action": "send_message", "message": "hello room"})
        for client in (a, b):
            # The demo view announces joins (presence) and publishes the channel envelope.
            message = await next_non_presence(client)
            assert (message["type"], message["channel"]) == ("message", "lobby")
            assert message["data"]["message"] == "hello room"
            assert message["data"]["author"] == "a@example.com"
    # The emulator's row made $connect accept it; both sessions were recorded.
    assert await ApiGateway.objects.filter(api_id="emulator").aexists()
    assert await WebSocketSession.objects.filter(channel_name="lobby").acount() == 2


async def test_login_through_the_login_form(ws_client: Any) -> None:
    await make_user("form@example.com", "pw-form-123!")
    async with ws_client(username="form@example.com", password="pw-form-123!") as ws:
        assert (await next_non_presence(ws))["type"] == "welcome"
    with pytest.raises(LoginFailed, match=re.escape("form@example.com")):
        async with ws_client(username="form@example.com", password="wrong"):
            pass


async def test_refusals_say_which_step_failed(ws_client: Any) -> None:
    with pytest.raises(ConnectRefused) as info:
        async with ws_client(channel="lobby"):  # anonymous: no token
            pass
    assert info.value.status == 401
    user = await make_user()
    with pytest.raises(ConnectRefused) as bad_channel:
        async with ws_client(user=user, channel="no spaces"):
            pass
    assert bad_channel.value.status == 400


async def test_timeouts_and_closes_are_distinct(ws_client: Any) -> None:
    user = await make_user()
    async with ws_client(user=user) as ws:
        await ws.receive_json(timeout=10)  # the welcome
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=re.escape("no message within 0.3 s")):
            await ws.receive_json(timeout=0.3)
        assert time.monotonic() - started < 5
        await ws.send_text("x" * 40_000)  # over the 32 KB frame limit
        with pytest.raises(ConnectionClosed) as info:
            await ws.receive_json(timeout=10)
        assert info.value.code == 1009
        assert ws.close_code == 1009


async def test_the_client_without_the_fixture(ws_client: Any, ws_gateway_emulator: Any) -> None:
    user = await make_user()
    backend = ws_gateway_emulator.config.target_base_url.removesuffix("/ws/")
    client = WebSocketTestClient(ws_gateway_emulator.url, backend, user=user, channel="dev")
    await client.connect()
    try:
        assert (await client.receive_json(timeout=10))["channel"] == "dev"
    finally:
        await client.close()


class TestTheDefaultConfiguration:
    """``ws_client`` with nothing overridden: ``live_server`` and this suite's own ``EchoView``."""

    @pytest.fixture
    def ws_gateway_emulator_config(self, request: pytest.FixtureRequest) -> EmulatorConfig:
        # The plugin's own default (this module overrides it above for the other tests).
        live_server = request.getfixturevalue("live_server")
        return EmulatorConfig(target_base_url=f"{live_server.url}/ws/")

    @pytest.fixture(autouse=True)
    def _suite_urls(self, settings: Any) -> None:
        settings.ROOT_URLCONF = "tests.urls"

    async def test_a_broadcast_from_the_test_reaches_the_client(self, ws_client: Any) -> None:
        user = await make_user()
        async with ws_client(user=user, channel="news") as ws:
            session = await WebSocketSession.objects.aget(channel_name="news")
            assert session.user_id == user.pk
            report = await WebSocketSession.objects.filter(channel_name="news").asend_message(
                {"headline": "sent by the test"}
            )
            assert report.delivered_count == 1
            assert await ws.receive_json(timeout=10) == {"headline": "sent by the test"}
