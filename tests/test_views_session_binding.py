"""A connect token dies with its Django session; refusals never burn a token or answer 500.

Before: a token fetched before logout, replayed with the old cookie, still opened an
authenticated socket (the token row only held an HMAC of the session key, never checked against
the session store); a duplicate connection id (409) spent the token; and inside an enclosing
transaction the duplicate INSERT poisoned it, so the refusal's own write made a 500.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.db import connection
from django.test import AsyncClient, Client

from aws_ws_async.models import ConnectionRateLimit, WebSocketSession, WebSocketToken
from aws_ws_async.models.tokens import digest_token
from tests.fixtures_views import (
    Browser,
    connect,
    gateway_headers,
    login_browser,
    new_connection_id,
)

CSRF = "C" * 32


async def logged_in(user: Any) -> tuple[AsyncClient, Browser]:
    """A real browser: Django's login through the test client, its cookie, a fetched token."""
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(user)
    client.cookies["csrftoken"] = CSRF
    session_key = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    return client, Browser(user=user, session_key=session_key)


async def fetch_token(client: AsyncClient) -> str:
    response = await client.post("/ws-token/", headers={"X-CSRFToken": CSRF})
    assert response.status_code == 200, response.content
    return str(response.json()["token"])


async def is_used(raw: str) -> bool:
    return (await WebSocketToken.objects.aget(token=digest_token(raw))).used


def store(session_key: str) -> Any:
    return import_module(django_settings.SESSION_ENGINE).SessionStore(session_key)


# --- the token dies with its session ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_token_fetched_before_logout_no_longer_connects(
    ws_settings: Any, gateway: Any, user: Any
) -> None:
    client, browser = await logged_in(user)
    token = await fetch_token(client)
    await client.alogout()  # django.contrib.auth.alogout: flushes the session
    response = await connect(browser, new_connection_id(), token=token)  # the old cookie
    assert response.status_code == 401, response.content
    assert await WebSocketSession.objects.acount() == 0
    refusal = await ConnectionRateLimit.objects.aget()
    assert refusal.reason == "session_ended"


@pytest.mark.django_db(transaction=True)
async def test_token_of_a_live_session_connects(ws_settings: Any, gateway: Any, user: Any) -> None:
    """The control for the test above: same steps without the logout."""
    client, browser = await logged_in(user)
    token = await fetch_token(client)
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_session_flush_voids_the_token(ws_settings: Any, gateway: Any, browser: Any) -> None:
    token = await browser.anew_token()
    await store(browser.session_key).adelete()
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 401
    assert not await is_used(token)  # refused, not spent


@pytest.mark.django_db(transaction=True)
async def test_password_change_voids_the_token(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    token = await browser.anew_token()
    user = await get_user_model()._default_manager.aget(pk=browser.user.pk)
    user.set_password("a-new-password-after-a-leak")
    await user.asave()
    # The session still exists, but its auth hash no longer matches the user's.
    assert await store(browser.session_key).aexists(browser.session_key)
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 401


@pytest.mark.django_db(transaction=True)
async def test_session_of_another_user_does_not_authenticate(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    """A token bound to a session that now names someone else (a re-login) is refused."""
    other = await sync_to_async(_other_user)()
    token = await browser.anew_token()
    session = store(browser.session_key)
    await session.aload()
    await session.aset(SESSION_KEY, str(other.pk))
    await session.aset(HASH_SESSION_KEY, other.get_session_auth_hash())
    await session.asave()
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 401


@pytest.mark.django_db(transaction=True)
async def test_revocation_methods_spend_unspent_tokens_only(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    spent, unspent = await browser.anew_token(), await browser.anew_token()
    assert (await connect(browser, new_connection_id(), token=spent)).status_code == 200
    other = await sync_to_async(login_browser)(await sync_to_async(_other_user)())
    others = await other.anew_token()
    assert await WebSocketToken.arevoke_for_user(browser.user) == 1
    assert await is_used(unspent)
    assert not await is_used(others)
    assert (await connect(browser, new_connection_id(), token=unspent)).status_code == 401
    assert await WebSocketToken.arevoke_for_session(other.session_key) == 1
    assert await WebSocketToken.arevoke_for_session(other.session_key) == 0
    assert (await connect(other, new_connection_id(), token=others)).status_code == 401


def _other_user() -> Any:
    return get_user_model()._default_manager.create_user(
        email="someone@example.com", password="pw-0123456789"
    )


# --- refusals never burn or 500 -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_duplicate_connection_id_does_not_burn_the_token(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    cid = new_connection_id()
    assert (await connect(browser, cid)).status_code == 200
    token = await browser.anew_token()
    response = await connect(browser, cid, token=token)
    assert response.status_code == 409
    assert response.json()["error"] == "duplicate_connection"
    assert not await is_used(token)
    # The browser retries with the same token once API Gateway hands out a fresh id.
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 200
    assert await is_used(token)


def sync_connect(browser: Browser, connection_id: str, token: str) -> Any:
    """$connect through Django's sync test client: the view runs in the test's own
    transaction (a ``TestCase``), which is where a poisoned transaction turned 409 into 500."""
    client = Client()
    client.cookies[django_settings.SESSION_COOKIE_NAME] = browser.session_key
    headers = gateway_headers(connection_id, connect=True)
    host = headers.pop("Host")
    return client.post(
        f"/ws/connect?ws_token={token}",
        data=b"{}",  # Django's client sends no Content-Length for an empty body
        content_type="application/octet-stream",
        headers=headers,
        HTTP_HOST=host,
    )


@pytest.mark.django_db  # the test runs inside atomic(), as a user's TestCase does
@pytest.mark.parametrize("atomic_requests", [False, True])
def test_duplicate_inside_an_enclosing_transaction_is_409_not_500(
    ws_settings: Any, gateway: Any, browser: Any, monkeypatch: Any, atomic_requests: bool
) -> None:
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic_requests)
    assert connection.in_atomic_block
    cid = new_connection_id()
    first = sync_connect(browser, cid, browser.new_token())
    assert first.status_code == 200, first.content
    token = browser.new_token()
    response = sync_connect(browser, cid, token)
    assert response.status_code == 409, response.content
    # The enclosing transaction is still usable, and the token was given back.
    assert not WebSocketToken.objects.get(token=digest_token(token)).used
    assert WebSocketSession.objects.filter(connection_id=cid).count() == 1
    assert ConnectionRateLimit.objects.filter(reason="duplicate").count() == 1


# --- receivers: logout and password change revoke unspent tokens --------------------------


@pytest.mark.django_db(transaction=True)
async def test_logout_revokes_the_users_unspent_tokens(
    ws_settings: Any, gateway: Any, user: Any
) -> None:
    client, browser = await logged_in(user)
    tokens = [await fetch_token(client), await fetch_token(client)]
    await middleware_logout(browser.session_key)
    assert [await is_used(token) for token in tokens] == [True, True]


async def middleware_logout(session_key: str) -> None:
    """``alogout`` on a request as AuthenticationMiddleware builds it (``request.auser``).

    ``AsyncClient.alogout`` sets only ``request.user``, so Django's ``alogout`` sends
    ``user_logged_out`` with ``user=None``; a real logout view does not.
    """
    from django.contrib.auth import aget_user, alogout
    from django.http import HttpRequest

    request = HttpRequest()
    request.session = store(session_key)

    async def auser() -> Any:
        return await aget_user(request)

    request.auser = auser  # type: ignore[attr-defined]
    await alogout(request)


@pytest.mark.django_db(transaction=True)
async def test_password_change_that_keeps_the_session_still_voids_the_token(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    """Django's password-change view re-hashes the *current* session so the user stays logged
    in; the session then authenticates again, so only the revocation stops the old token."""
    token = await browser.anew_token()
    user = await get_user_model()._default_manager.aget(pk=browser.user.pk)
    user.set_password("a-new-password-after-a-leak")
    await user.asave()
    session = store(browser.session_key)
    await session.aload()
    await session.aset(HASH_SESSION_KEY, user.get_session_auth_hash())  # update_session_auth_hash
    await session.asave()
    assert await is_used(token)
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 401
    # A token fetched after the change works: the session itself is fine.
    browser.user = user
    assert (await connect(browser, new_connection_id())).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_ordinary_user_saves_revoke_nothing(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    token = await browser.anew_token()
    user = await get_user_model()._default_manager.aget(pk=browser.user.pk)
    user.is_staff = not user.is_staff
    await user.asave()
    assert not await is_used(token)
