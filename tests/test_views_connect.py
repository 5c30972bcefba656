"""$connect: every check, its status code, what is recorded, and the query budget."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import AsyncClient

from aws_ws_async.models import ConnectionRateLimit, WebSocketSession
from tests.fixtures_views import connect, new_connection_id

pytestmark = pytest.mark.django_db(transaction=True)


async def test_connect_with_token_creates_session(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    cid = new_connection_id()
    response = await connect(AsyncClient(), browser, cid, channel="room-1")
    assert response.status_code == 200, response.content
    session = await WebSocketSession.objects.select_related("user").aget(connection_id=cid)
    assert session.user.pk == browser.user.pk
    assert session.channel_name == "room-1"
    assert session.api_gateway_id == gateway.pk
    assert await ConnectionRateLimit.objects.filter(successful=True).acount() == 1
