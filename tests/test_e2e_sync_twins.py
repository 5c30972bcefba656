"""Every sync twin from a view under real uvicorn, daphne, runserver and gunicorn (issue 9.1).

The Django test client runs sync views in the test's thread and never showed that under ASGI
each sync twin deadlocked: work handed to the portal inherited the request's thread-sensitive
executor and was queued on the very thread blocked waiting for it. Each request here has a
20 s deadline, so a deadlock fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aiohttp
import pytest

from aws_ws_async.testing import FaultEndpoint
from tests.e2e_harness import RunningServer

pytestmark = pytest.mark.e2e

DEADLINE = aiohttp.ClientTimeout(total=20)


async def post(
    http: aiohttp.ClientSession, url: str, data: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with http.post(url, data=data) as response:
        body = await response.json(content_type=None) if response.status == 200 else {}
        if response.status != 200:
            raise AssertionError(f"{url}: {response.status} {await response.text()}")
        return response.status, body


async def make_sessions(
    http: aiohttp.ClientSession, server: RunningServer, count: int, **extra: str
) -> list[str]:
    _, body = await post(http, f"{server.url}/e2e/make-sessions", {"count": str(count), **extra})
    return list(body["ids"])


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


SENDS = {
    "qs_send": ("/e2e/qs-send", 2),
    "session_send": ("/e2e/session-send", 1),
    "async_sync_to_async_thread_sensitive": ("/e2e/async-qs-send?thread_sensitive=1", 2),
    "async_sync_to_async_not_thread_sensitive": ("/e2e/async-qs-send?thread_sensitive=0", 2),
}


@pytest.mark.parametrize("twin", sorted(SENDS))
async def test_sync_send_twin(
    e2e_any_server: RunningServer, e2e_endpoint: FaultEndpoint, twin: str
) -> None:
    path, count = SENDS[twin]
    async with aiohttp.ClientSession(timeout=DEADLINE) as http:
        ids = await make_sessions(http, e2e_any_server, count)
        _, body = await post(http, e2e_any_server.url + path, {"ids": ",".join(ids)})
    assert body["delivered"] == count, body
    for cid in ids:
        assert e2e_endpoint.received[cid], f"{cid} got nothing under {e2e_any_server.name}"


async def test_portal_work_does_not_inherit_the_request_context(
    e2e_any_server: RunningServer,
) -> None:
    """``sync.run`` from a sync view of a coroutine that itself calls ``sync_to_async``."""
    async with aiohttp.ClientSession(timeout=DEADLINE) as http:
        ids = await make_sessions(http, e2e_any_server, 3)
        _, body = await post(
            http, f"{e2e_any_server.url}/e2e/bridge-async-orm", {"ids": ",".join(ids)}
        )
    assert body["delivered"] == 3, body


async def test_send_to_user(e2e_any_server: RunningServer, e2e_endpoint: FaultEndpoint) -> None:
    username = f"u-{e2e_any_server.name}-{os.urandom(4).hex()}"
    async with aiohttp.ClientSession(timeout=DEADLINE) as http:
        ids = await make_sessions(http, e2e_any_server, 2, username=username)
        _, body = await post(http, f"{e2e_any_server.url}/e2e/send-to-user", {"username": username})
    assert body["delivered"] == 2, body
    assert all(e2e_endpoint.received[cid] for cid in ids)


@pytest.mark.parametrize(
    ("path", "count"), [("/e2e/qs-disconnect", 2), ("/e2e/session-disconnect", 1)]
)
async def test_sync_disconnect_twin(
    e2e_any_server: RunningServer, e2e_endpoint: FaultEndpoint, path: str, count: int
) -> None:
    async with aiohttp.ClientSession(timeout=DEADLINE) as http:
        ids = await make_sessions(http, e2e_any_server, count)
        _, body = await post(http, e2e_any_server.url + path, {"ids": ",".join(ids)})
    assert body["delivered"] == count, body
    assert set(ids) <= set(e2e_endpoint.deleted)


async def test_logout_closes_connections_without_stalling(
    e2e_any_server: RunningServer, e2e_endpoint: FaultEndpoint
) -> None:
    """The logout receiver closes the user's sockets; the request does not wait a fixed 2 s."""
    username = f"logout-{e2e_any_server.name}-{os.urandom(4).hex()}"
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for an IP-address host
    async with aiohttp.ClientSession(timeout=DEADLINE, cookie_jar=jar) as http:
        ids = await make_sessions(http, e2e_any_server, 2, username=username, login="1")
        assert any(c.key == "sessionid" for c in jar), "login set no session cookie"
        started = time.monotonic()
        async with http.post(f"{e2e_any_server.url}/e2e/logout") as response:
            assert response.status == 200, await response.text()
            await response.read()
        elapsed = time.monotonic() - started
    assert elapsed < 0.5, f"logout took {elapsed:.2f}s under {e2e_any_server.name}"
    await wait_until(lambda: set(ids) <= set(e2e_endpoint.deleted))
