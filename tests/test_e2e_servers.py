"""End to end: the example project under a real uvicorn and a real daphne on 127.0.0.1.

The test plays API Gateway: it posts ``$connect``, a message and ``$disconnect`` over HTTP with
the headers an HTTP_PROXY integration sends, and a loopback ``@connections`` endpoint
(``aws_ws_async.testing.FaultEndpoint``) receives what Django sends back. During ``$connect``
that endpoint answers 410 for the new connection, as API Gateway does, so the welcome message
only arrives because it is retried after the handshake completed.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from aws_ws_async.testing import FaultEndpoint
from tests.e2e_harness import DemoProject, RunningServer, gateway_headers, wait_until
from tests.fixtures_views import new_connection_id

pytestmark = pytest.mark.e2e

API_ID = "e2eapi0001"
TOKENS = 4

SETUP = f"""
import json
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
from aws_ws_async.models import ApiGateway, WebSocketToken
ApiGateway.objects.create(api_name="e2e", api_id="{API_ID}", stage_name="test",
    target_base_endpoint="http://127.0.0.1/ws/", api_created=True, deployment_id="d1")
user = get_user_model()._default_manager.create_user("e2e-user", "e2e@example.com", "pw-e2e-123")
store = SessionStore()
store[SESSION_KEY] = str(user.pk)
store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
store[HASH_SESSION_KEY] = user.get_session_auth_hash()
store.save()
tokens = [WebSocketToken.issue(user, store.session_key, expiry_seconds=600, max_per_minute=100)
          for _ in range({TOKENS} * 2)]
print(json.dumps({{"session_key": store.session_key, "tokens": tokens}}))
"""


@pytest.fixture(scope="module")
def login(e2e_demo_project: DemoProject) -> dict[str, Any]:
    """A gateway, a logged-in user's session key and tokens in the demo's database."""
    return dict(e2e_demo_project.shell_json(SETUP))


def api_headers(
    server: RunningServer, cid: str, login: dict[str, Any], *, connect: bool = False
) -> dict[str, str]:
    """API Gateway's headers for this module's gateway (``$connect``'s with the session)."""
    session_key = login["session_key"] if connect else None
    return gateway_headers(server, cid, api_id=API_ID, session_key=session_key)


async def test_connect_message_disconnect(
    e2e_demo_server: RunningServer, e2e_endpoint: FaultEndpoint, login: dict[str, Any]
) -> None:
    server, endpoint = e2e_demo_server, e2e_endpoint
    token = login["tokens"].pop()
    cid = new_connection_id()
    url = server.url
    endpoint.plan.gone.add(cid)  # the socket is not open while $connect runs
    async with aiohttp.ClientSession() as http:
        connect_url = f"{url}/ws/connect?ws_token={token}&channel=room-e2e"
        async with http.post(
            connect_url, headers=api_headers(server, cid, login, connect=True)
        ) as r:
            assert r.status == 200, await r.text()
        endpoint.plan.gone.discard(cid)  # API Gateway opened the socket
        await wait_until(lambda: bool(endpoint.received.get(cid)))
        welcome = json.loads(endpoint.received[cid][0])
        assert welcome["type"] == "welcome"
        assert welcome["channel"] == "room-e2e"
        assert endpoint.calls[cid] >= 1

        body = json.dumps({"action": "send_message", "message": "hello over HTTP"})
        async with http.post(
            f"{url}/ws/default", data=body, headers=api_headers(server, cid, login)
        ) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["delivered"] == 1
        # The demo publishes through channels.apublish: the channel envelope around the data.
        frame = json.loads(endpoint.received[cid][-1])
        assert frame["type"] == "message"
        assert frame["channel"] == "room-e2e"
        broadcast = frame["data"]
        assert broadcast["message"] == "hello over HTTP"
        assert broadcast["author"] == "e2e-user"

        async with http.post(f"{url}/ws/disconnect", headers=api_headers(server, cid, login)) as r:
            assert r.status == 200, await r.text()
        async with http.post(
            f"{url}/ws/default", data=body, headers=api_headers(server, cid, login)
        ) as r:
            assert r.status == 401


async def test_refusals_over_real_http(
    e2e_demo_server: RunningServer, login: dict[str, Any]
) -> None:
    server = e2e_demo_server
    url = server.url
    cid = new_connection_id()
    async with aiohttp.ClientSession() as http:
        headers = api_headers(server, cid, login, connect=True)
        async with http.get(f"{url}/ws/connect", headers=headers) as r:
            assert r.status == 405
        bad_secret = {**headers, "X-Ws-Gateway-Secret": "x" * 40}
        async with http.post(f"{url}/ws/connect?ws_token=0", headers=bad_secret) as r:
            assert r.status == 403
        async with http.post(f"{url}/ws/connect?ws_token={'0' * 64}", headers=headers) as r:
            assert r.status == 401
        token = login["tokens"].pop()
        evil = {**headers, "Origin": "https://evil.test"}
        async with http.post(f"{url}/ws/connect?ws_token={token}", headers=evil) as r:
            assert r.status == 403
        async with http.post(f"{url}/ws/default", data=b"x" * 200_000, headers=headers) as r:
            assert r.status == 413


async def test_required_headers_survive_real_servers(
    e2e_demo_server: RunningServer, login: dict[str, Any]
) -> None:
    """Evidence for requiring Host and Content-Length: aiohttp sends ``Content-Length: 0`` on an
    empty POST (as API Gateway does) and uvicorn/daphne pass it to Django, so a bodiless
    ``$disconnect`` is judged on its merits (401: no such session), not refused for a missing
    header; only a chunked request lacks Content-Length, and it is refused (400)."""
    server = e2e_demo_server
    url = server.url
    cid = new_connection_id()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/ws/disconnect", headers=api_headers(server, cid, login)) as r:
            assert r.status == 401, await r.text()
        body = json.dumps({"action": "send_message", "message": "x"}).encode()
        async with http.post(
            f"{url}/ws/default", data=body, headers=api_headers(server, cid, login), chunked=True
        ) as r:
            assert r.status == 400, await r.text()
            assert (await r.json())["error"] == "missing_headers"
