"""WebSocketTokenView: CSRF-protected POST that hands a logged-in browser a one-time token."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import AsyncClient

from aws_ws_async.models import WebSocketSession, WebSocketToken
from aws_ws_async.models.tokens import digest_token
from tests.fixtures_views import Browser, QueryLog, connect, new_connection_id

pytestmark = pytest.mark.django_db(transaction=True)

CSRF = "A" * 32  # a CSRF secret: cookie and header must carry it


async def logged_in_client(user: Any) -> AsyncClient:
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(user)
    client.cookies["csrftoken"] = CSRF
    return client


async def request_token(client: AsyncClient, csrf: str | None = CSRF) -> Any:
    headers = {"X-CSRFToken": csrf} if csrf else {}
    return await client.post("/ws-token/", headers=headers)


async def test_issues_a_token(settings: Any, user: Any) -> None:
    client = await logged_in_client(user)
    response = await request_token(client)
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"token", "expires_in"}
    assert data["expires_in"] == 60
    assert len(data["token"]) == 64
    row = await WebSocketToken.objects.aget()
    assert row.token == digest_token(data["token"])  # only the digest is stored
    assert row.user_id == user.pk
    assert response.headers["Cache-Control"].startswith("max-age=0")


async def test_lifetime_follows_settings(settings: Any, user: Any) -> None:
    settings.AWS_WS_ASYNC = {**settings.AWS_WS_ASYNC, "token_expiry_seconds": 15}
    response = await request_token(await logged_in_client(user))
    assert response.json()["expires_in"] == 15


async def test_anonymous_is_401(settings: Any) -> None:
    client = AsyncClient(enforce_csrf_checks=True)
    client.cookies["csrftoken"] = CSRF
    response = await request_token(client)
    assert response.status_code == 401
    assert await WebSocketToken.objects.acount() == 0


async def test_inactive_user_is_401(settings: Any, user: Any) -> None:
    client = await logged_in_client(user)
    await get_user_model()._default_manager.filter(pk=user.pk).aupdate(is_active=False)
    assert (await request_token(client)).status_code == 401


@pytest.mark.parametrize("csrf", [None, "B" * 32, "short"])
async def test_csrf_is_enforced(settings: Any, user: Any, csrf: str | None) -> None:
    response = await request_token(await logged_in_client(user), csrf=csrf)
    assert response.status_code == 403
    assert await WebSocketToken.objects.acount() == 0


async def test_csrf_enforced_even_without_the_middleware(settings: Any, user: Any) -> None:
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "csrf" not in m.lower()]
    response = await request_token(await logged_in_client(user), csrf=None)
    assert response.status_code == 403


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
async def test_only_post(settings: Any, user: Any, method: str) -> None:
    client = await logged_in_client(user)
    response = await getattr(client, method)("/ws-token/", headers={"X-CSRFToken": CSRF})
    assert response.status_code == 405
    assert await WebSocketToken.objects.acount() == 0


async def test_rate_limit_is_429(settings: Any, user: Any) -> None:
    settings.AWS_WS_ASYNC = {**settings.AWS_WS_ASYNC, "token_rate_limit_per_minute": 2}
    client = await logged_in_client(user)
    statuses = [(await request_token(client)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = await request_token(client)
    assert limited.headers["Retry-After"] == "60"
    assert await WebSocketToken.objects.acount() == 2  # refused tokens are not kept
    other = await sync_to_async(get_user_model()._default_manager.create_user)(
        email="bob@example.com", password="pw-bob-12345"
    )
    assert (await request_token(await logged_in_client(other))).status_code == 200


async def test_token_opens_a_websocket(ws_settings: Any, gateway: Any, user: Any) -> None:
    client = await logged_in_client(user)
    token = (await request_token(client)).json()["token"]
    browser = Browser(user=user, session_key=client.session.session_key)
    cid = new_connection_id()
    assert (await connect(browser, cid, token=token)).status_code == 200
    assert (await WebSocketSession.objects.aget(connection_id=cid)).user_id == user.pk


async def test_token_survives_secret_key_rotation(
    ws_settings: Any, gateway: Any, user: Any
) -> None:
    client = await logged_in_client(user)
    token = (await request_token(client)).json()["token"]
    old = ws_settings.SECRET_KEY
    ws_settings.SECRET_KEY = "rotated-key-for-the-token-view-test-0123456789abc"
    ws_settings.SECRET_KEY_FALLBACKS = [old]
    browser = Browser(user=user, session_key=client.session.session_key)
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 200


async def test_query_count(settings: Any, user: Any, query_log: QueryLog) -> None:
    client = await logged_in_client(user)
    await sync_to_async(query_log.install_here)()  # the test client runs views in this thread
    with query_log.recording() as queries:
        assert (await request_token(client)).status_code == 200
    print(f"\ntoken view queries: {len(queries)}")
    assert len(queries) <= 4, queries  # session, user, insert, count
    # The log saw the view's own write: an empty log cannot pass the budget above.
    assert any(
        q.lstrip().upper().startswith("INSERT") and "aws_ws_async_websockettoken" in q
        for q in queries
    ), queries
