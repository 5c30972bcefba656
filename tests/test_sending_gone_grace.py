"""A 410 for a session still in ``$connect`` must not kill it (``gone_grace_seconds``).

API Gateway answers ``GoneException`` to every post until ``$connect`` has returned, and
``$connect`` inserts the session row before it answers; a broadcast in that window used to mark
the new row gone, and the connection then lived for up to two hours with every frame refused.
The test suite runs with the grace at 0 (tests/settings.py); here it is on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.utils import timezone

from aws_ws_async.channels.reaper import aconfirm
from aws_ws_async.models import WebSocketSession
from aws_ws_async.testing import network
from tests.fixtures_delivery import make_gateway, make_sessions, point_settings_at

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def graced(settings: Any) -> Any:
    point_settings_at(
        settings,
        "https://{api_id}.execute-api.us-east-1.amazonaws.com/{stage}",
        transport="aws_ws_async.testing.InMemoryTransport",
        gone_grace_seconds=30,
    )
    network.reset()
    yield settings
    network.reset()


async def _row(cid: str) -> WebSocketSession:
    return await WebSocketSession.objects.aget(connection_id=cid)


async def _age(cid: str, seconds: float) -> None:
    then = timezone.now() - timedelta(seconds=seconds)
    await WebSocketSession.objects.filter(connection_id=cid).aupdate(connected_at=then)


async def test_a_fresh_session_answering_410_is_reported_gone_but_kept(graced: Any) -> None:
    gateway = await sync_to_async(make_gateway)()
    [ok, fresh] = await sync_to_async(make_sessions)(gateway, 2)
    network.script(fresh, "gone")

    report = await WebSocketSession.objects.all().asend_message({"n": 1})

    assert (report.delivered, report.gone) == ([ok], [fresh])
    assert (await _row(fresh)).connected  # still in its $connect window: kept

    await _age(fresh, 31)  # the same 410 once the grace has passed marks it
    report = await WebSocketSession.objects.all().asend_message({"n": 2})
    row = await _row(fresh)
    assert report.gone == [fresh]
    assert (row.connected, row.disconnect_reason) == (False, "gone")
    await sync_to_async(connections.close_all)()


def test_the_sync_twin_spares_a_fresh_session_too(graced: Any) -> None:
    gateway = make_gateway()
    [old, fresh] = make_sessions(gateway, 2)
    WebSocketSession.objects.filter(connection_id=old).update(
        connected_at=timezone.now() - timedelta(minutes=5)
    )
    network.script(old, "gone")
    network.script(fresh, "gone")

    report = WebSocketSession.objects.all().send_message({"n": 1})

    assert sorted(report.gone) == sorted([old, fresh])
    rows = dict(WebSocketSession.objects.values_list("connection_id", "connected"))
    assert rows == {old: False, fresh: True}


async def test_a_server_side_close_is_not_graced(graced: Any) -> None:
    gateway = await sync_to_async(make_gateway)()
    [fresh] = await sync_to_async(make_sessions)(gateway, 1)

    await WebSocketSession.objects.all().adisconnect()

    row = await _row(fresh)
    assert (row.connected, row.disconnect_reason) == (False, "server")
    await sync_to_async(connections.close_all)()


async def test_the_reapers_get_410_is_not_graced(graced: Any) -> None:
    """A GET that answers 410 is proof: the reaper marks even a young row."""
    gateway = await sync_to_async(make_gateway)()
    [fresh] = await sync_to_async(make_sessions)(gateway, 1)
    network.script(fresh, "gone")

    report = await aconfirm(WebSocketSession.objects.all())

    assert report.gone == [fresh]
    assert not (await _row(fresh)).connected
    await sync_to_async(connections.close_all)()
