"""The documented recipe for users: ``ws_gateway_emulator`` in front of an ASGI server.

This module overrides ``ws_gateway_emulator_config`` exactly as docs/emulator.md shows, so the
public fixtures are tested the way users will combine them, including a welcome message
posted by ``send_after_connect`` after ``$connect`` (which needs an ASGI server).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.urls import path

from aws_ws_async.emulator import EmulatorConfig, EmulatorThread
from aws_ws_async.models import ApiGateway, WebSocketSession
from aws_ws_async.views import WebSocketTokenView

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "example"))

from chat.websocket import ChatWebSocketView

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

urlpatterns = [
    path("ws/<slug:route>", ChatWebSocketView.as_view()),
    path("ws-token/", WebSocketTokenView.as_view()),
]


@pytest.fixture
def ws_gateway_emulator_config(asgi_server_factory: Any, settings: Any) -> EmulatorConfig:
    from django.core.asgi import get_asgi_application
    from django.db import connections

    settings.ROOT_URLCONF = __name__
    server = asgi_server_factory(
        get_asgi_application(), before_stop=sync_to_async(connections.close_all)
    )
    return EmulatorConfig(f"{server.url}/ws/", api_id="localdev", stage="test")


async def test_recipe_from_the_docs(settings: Any, ws_gateway_emulator: EmulatorThread) -> None:
    from django.contrib.auth import get_user_model

    gateway = ws_gateway_emulator
    settings.AWS_WS_ASYNC = {
        **settings.AWS_WS_ASYNC,
        "management_endpoint_url": gateway.management_url.replace("/test", "/{stage}"),
    }
    backend = gateway.config.target_base_url.removesuffix("/ws/")
    await ApiGateway.objects.acreate(
        api_name="Recipe",
        api_id="localdev",
        stage_name="test",
        target_base_endpoint=gateway.config.target_base_url,
    )
    manager = get_user_model()._default_manager
    user = await sync_to_async(manager.create_user)(email="r@example.com", password="pw-1234!")
    client = AsyncClient()
    await client.aforce_login(user)
    csrf = secrets.token_hex(16)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    headers = {"Cookie": f"{cookie}; csrftoken={csrf}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{backend}/ws-token/", headers={**headers, "X-CSRFToken": csrf}
        ) as response:
            token = (await response.json())["token"]
        ws = await http.ws_connect(
            f"{gateway.url}?channel=lobby&ws_token={token}", headers={**headers, "Origin": backend}
        )
        welcome = await asyncio.wait_for(ws.receive(), 10)
        assert json.loads(welcome.data)["type"] == "welcome"
        [connection_id] = gateway.connection_ids()
        assert await WebSocketSession.objects.filter(connection_id=connection_id).aexists()
        await ws.close()
