"""A channel broadcast that reaches a connection still inside ``$connect`` must not kill it.

API Gateway (and the emulator) answers ``410 GoneException`` to a post for a connection whose
``$connect`` has not returned yet. ``$connect`` commits the session and its first channel's
subscription before returning, so a publish in that window posts to it, gets 410, and the
broadcast marks the brand-new session gone: the socket opens, but every later frame is refused
(401 unknown_connection) and nothing reaches it. The browser client survives it (no
``subscribed`` within ``subscribeTimeoutMs``: it reconnects), but the server should not do it.
Fixed by ``gone_grace_seconds`` (a send's 410 for a row younger than that is reported, not
marked); the suite runs with the grace at 0, so this test turns it on as production has it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import path

from aws_ws_async.channels import apublish
from aws_ws_async.emulator import GatewayEmulator
from aws_ws_async.models import WebSocketSession
from aws_ws_async.views import WebSocketTokenView
from tests.fixtures_demo import make_client
from tests.fixtures_emulator import DjangoServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "example"))

from chat.websocket import ChatWebSocketView

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

#: How long $connect goes on after committing the session (a slow backend, a busy machine).
CONNECT_TAIL_SECONDS = 1.0


class SlowConnectView(ChatWebSocketView):
    async def connect(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = await super().connect(request, *args, **kwargs)
        await asyncio.sleep(CONNECT_TAIL_SECONDS)  # the session row is committed meanwhile
        return response


urlpatterns = [
    path("ws/<slug:route>", SlowConnectView.as_view()),
    path("ws-token/", WebSocketTokenView.as_view()),
]


@pytest.fixture
def demo_stack_settings() -> dict[str, Any]:
    return {"gone_grace_seconds": 5}  # on, as production has it (the suite runs with 0)


async def test_a_publish_during_connect_leaves_the_new_session_connected(
    demo_stack: tuple[GatewayEmulator, DjangoServer],
) -> None:
    emulator, server = demo_stack
    async with aiohttp.ClientSession() as http:
        alice = await make_client(http, server, "alice@example.com")
        joining = asyncio.ensure_future(
            http.ws_connect(
                f"{emulator.url}?channel=room&ws_token={await alice.token()}",
                headers={"Cookie": alice.cookie, "Origin": server.url},
            )
        )
        for _ in range(200):  # the row is committed while $connect still runs
            if await WebSocketSession.objects.filter(connected=True).aexists():
                break
            await asyncio.sleep(0.01)
        assert not joining.done()
        report = await apublish("room", {"message": "while you were connecting"})
        ws = await joining
        try:
            # Not delivered is fine (it was not open yet; history would replay it), but the
            # session must stay connected, and the next publish must reach it.
            assert report.delivery.delivered_count == 0
            assert report.delivery.gone_count == 1
            session = await WebSocketSession.objects.aget()
            assert session.connected, session.disconnect_reason
            report = await apublish("room", {"message": "now you are here"})
            assert report.delivery.delivered_count == 1
            frame = await ws.receive_json(timeout=10)
            while frame.get("type") != "message":  # presence frames of the demo view
                frame = await ws.receive_json(timeout=10)
            assert frame["data"] == {"message": "now you are here"}
        finally:
            await ws.close()
