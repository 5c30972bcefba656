"""``$connect`` on the async PostgreSQL path (``async_database``): the compiled statements run
on the loop, with no thread hop on the happy path, and every outcome is the sync path's: the
rows written, the refusals, the 409 that gives the token back, one winner per token.

PostgreSQL only, with real transactions (``transaction=True``: the async path steps aside
inside ``atomic()``); requests go through ``GatewayASGIHandler`` in-process, as under uvicorn.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.db import connection

from aws_ws_async.models import (
    ChannelSubscription,
    ConnectionRateLimit,
    WebSocketSession,
    WebSocketToken,
)
from aws_ws_async.models.tokens import digest_token
from aws_ws_async.views import reasons
from tests.fixtures_views import CLIENT_IP, Browser, connect, new_connection_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


@pytest.fixture
def async_db(ws_settings: Any, gateway: Any, fast_app: Any) -> Any:
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "async_database": True}
    return ws_settings


async def used(raw: str) -> bool:
    return (await WebSocketToken.objects.aget(token=digest_token(raw))).used


async def warmed(browser: Browser) -> None:
    """The first ``$connect`` of a process compiles the statements (on the sync path)."""
    assert (await connect(browser, new_connection_id(), channel="warm")).status_code == 200
    assert (await connect(browser, new_connection_id())).status_code == 200


async def test_connect_runs_on_the_loop(async_db: Any, browser: Browser, hops: list[str]) -> None:
    await warmed(browser)
    token = await browser.anew_token()
    cid = new_connection_id()
    hops.clear()
    response = await connect(browser, cid, channel="room-1", token=token)
    assert response.status_code == 200, response.content
    assert hops == []
    session = await WebSocketSession.objects.select_related("user").aget(connection_id=cid)
    assert session.user.pk == browser.user.pk
    assert (session.channel_name, session.connected) == ("room-1", True)
    assert len(session.session_key_hash) == 64
    assert len(session.auth_hash) == 64
    subscription = await ChannelSubscription.objects.aget(session=session)
    assert subscription.channel_name == "room-1"
    assert await used(token)
    attempt = await ConnectionRateLimit.objects.order_by("-pk").afirst()
    assert attempt is not None
    assert (attempt.successful, attempt.ip_address, attempt.user_id) == (
        True,
        CLIENT_IP,
        browser.user.pk,
    )
    token = await browser.anew_token()
    hops.clear()  # without a channel: one INSERT, no transaction
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 200
    assert hops == []


async def test_duplicate_connection_id_gives_the_token_back(
    async_db: Any, browser: Browser, hops: list[str]
) -> None:
    await warmed(browser)
    cid = new_connection_id()
    assert (await connect(browser, cid, channel="room")).status_code == 200
    token = await browser.anew_token()
    hops.clear()
    again = await connect(browser, cid, channel="room", token=token)
    assert again.status_code == 409
    assert "read_token" not in hops  # decided on the loop; only the refusal's UPDATE hops
    assert "spend_and_insert" not in hops
    assert not await used(token)
    assert await WebSocketSession.objects.filter(connection_id=cid).acount() == 1
    assert await ChannelSubscription.objects.filter(session__connection_id=cid).acount() == 1
    refused = await ConnectionRateLimit.objects.filter(successful=False).aget()
    assert refused.reason == reasons.DUPLICATE


async def test_one_token_one_winner(async_db: Any, browser: Browser, hops: list[str]) -> None:
    await warmed(browser)
    token = await browser.anew_token()
    hops.clear()
    responses = await asyncio.gather(
        *(connect(browser, new_connection_id(), channel="room", token=token) for _ in range(8))
    )
    assert sorted(r.status_code for r in responses) == [200] + [401] * 7
    assert "read_token" not in hops
    assert await WebSocketSession.objects.filter(channel_name="room").acount() == 1


async def test_an_ended_browser_session_is_refused(
    async_db: Any, browser: Browser, hops: list[str]
) -> None:
    await warmed(browser)
    token = await browser.anew_token()
    await Session.objects.filter(session_key=browser.session_key).adelete()
    hops.clear()
    response = await connect(browser, new_connection_id(), token=token)
    assert response.status_code == 401
    assert "read_token" not in hops
    assert not await used(token)
    refused = await ConnectionRateLimit.objects.filter(successful=False).aget()
    assert refused.reason == reasons.SESSION_ENDED


async def test_the_sync_path_while_a_statement_is_watched(
    async_db: Any, browser: Browser, hops: list[str]
) -> None:
    """An execute wrapper on this context's connection: the async path steps aside (Django's
    cursor runs every statement, in the usual hops)."""
    await warmed(browser)
    token = await browser.anew_token()
    hops.clear()
    with connection.execute_wrapper(lambda execute, *args: execute(*args)):
        assert (await connect(browser, new_connection_id(), token=token)).status_code == 200
    assert "read_token" in hops
    assert await used(token)
