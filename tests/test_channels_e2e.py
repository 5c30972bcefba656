"""Channels end to end: real sockets through the emulator, the view under uvicorn.

The built-in handlers post from background tasks on the server's loop; this is where that runs
as in production (the ASGI server's loop, the thread-sensitive ORM executor), not in the test's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import views as auth_views
from django.urls import path

from aws_ws_async.emulator import EmulatorConfig
from aws_ws_async.models import WebSocketSession
from aws_ws_async.views import WebSocketTokenView
from tests.fixtures_channels import serve_urlconf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "example"))

from chat.websocket import ChatWebSocketView

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

urlpatterns = [
    path("ws/<slug:route>", ChatWebSocketView.as_view()),  # PRESENCE_EVENTS = True
    path("ws-token/", WebSocketTokenView.as_view()),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="admin/login.html")),
]


@pytest.fixture
def ws_gateway_emulator_config(asgi_server_factory: Any, settings: Any) -> EmulatorConfig:
    return serve_urlconf(asgi_server_factory, settings, __name__)


async def make_user(email: str) -> Any:
    from django.contrib.auth import get_user_model

    manager = get_user_model()._default_manager
    return await sync_to_async(manager.create_user)(email=email, password="pw-e2e-chan-1")


async def until(ws: Any, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first frame ``wanted`` accepts (others, such as the welcome, are skipped)."""
    for _ in range(20):
        frame: dict[str, Any] = await ws.receive_json(timeout=10)
        if wanted(frame):
            return frame
    raise AssertionError("the frame never came")


def presence_event(event: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("type") == "presence" and f.get("event") == event


async def test_subscribe_presence_and_leave_over_real_sockets(ws_client: Any) -> None:
    alice, bob = await make_user("alice@example.com"), await make_user("bob@example.com")
    async with ws_client(user=alice, channel="room") as a:
        await until(a, lambda f: f.get("type") == "welcome")
        async with ws_client(user=bob, channel="room") as b:
            join = await until(a, presence_event("join"))
            assert (join["user"], join["connections"], join["count"]) == ("bob@example.com", 1, 2)

            await a.send_json({"action": "subscribe", "channel": "news"})
            subscribed = await until(a, lambda f: f.get("type") == "subscribed")
            assert subscribed["channel"] == "news"
            report = await WebSocketSession.objects.subscribed_to("news").asend_message(
                {"type": "note", "n": 1}
            )
            assert report.delivered_count == 1
            assert (await until(a, lambda f: f.get("type") == "note"))["n"] == 1

            await b.send_json({"action": "presence", "channel": "room"})
            snapshot = await until(b, presence_event("snapshot"))
            assert snapshot["users"] == [
                {"user": "alice@example.com", "connections": 1},
                {"user": "bob@example.com", "connections": 1},
            ]
            assert snapshot["count"] == 2
        leave = await until(a, presence_event("leave"))
        assert (leave["user"], leave["connections"], leave["count"]) == ("bob@example.com", 0, 1)
