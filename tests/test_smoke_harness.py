from __future__ import annotations

import json
import urllib.request

import pytest

from aws_ws_async.models import WebSocketSession


@pytest.mark.django_db(transaction=True)
async def test_async_orm_round_trip(gateway) -> None:
    await WebSocketSession.objects.acreate(connection_id="abc=", api_gateway=gateway)
    assert await WebSocketSession.objects.for_channel("").acount() == 1


def test_moto_server_answers(moto) -> None:
    with urllib.request.urlopen(f"{moto}/moto-api/data.json", timeout=10) as response:
        assert isinstance(json.load(response), dict)
