"""End to end: the example project under a real uvicorn and a real daphne on 127.0.0.1.

The test plays API Gateway: it posts ``$connect``, a message and ``$disconnect`` over HTTP with
the headers an HTTP_PROXY integration sends, and a loopback ``@connections`` endpoint
(``aws_ws_async.testing.FaultEndpoint``) receives what Django sends back. During ``$connect``
that endpoint answers 410 for the new connection, as API Gateway does, so the welcome message
only arrives because it is retried after the handshake completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aws_ws_async.testing import FaultEndpoint, FaultPlan
from tests.fixtures_views import new_connection_id, websocket_key

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example"
SECRET = "e2e-gateway-secret-0123456789abcdefghijkl"
API_ID = "e2eapi0001"
TOKENS = 4

SETUP = f"""
import json
from django.core.management import call_command
call_command("migrate", verbosity=0)
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
print("SETUP" + json.dumps({{"session_key": store.session_key, "tokens": tokens}}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[FaultEndpoint]:
    ep = FaultEndpoint(FaultPlan())
    ep.start_in_thread()
    try:
        yield ep
    finally:
        ep.stop_thread()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, endpoint: FaultEndpoint) -> dict[str, Any]:
    """A migrated example database with a gateway, a logged-in user and tokens (one process)."""
    db = tmp_path_factory.mktemp("e2e") / "demo.sqlite3"
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{EXAMPLE}",
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DEMO_DB_ENGINE": "sqlite",
        "DEMO_DB_NAME": str(db),
        "DEMO_DEBUG": "0",
        "DEMO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEMO_GATEWAY_SECRET": SECRET,
        "DEMO_MANAGEMENT_ENDPOINT_URL": endpoint.url,
        "DEMO_LOG_LEVEL": "WARNING",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    env.pop("AWS_PROFILE", None)
    manage = [sys.executable, str(EXAMPLE / "manage.py")]
    out = subprocess.run(
        [*manage, "shell", "-c", SETUP],
        env=env,
        cwd=EXAMPLE,
        check=True,
        timeout=180,
        capture_output=True,
        text=True,
    ).stdout
    data = json.loads(out.split("SETUP", 1)[1])
    return {"env": env, **data}


SERVERS = {
    "uvicorn": lambda port: [
        sys.executable,
        "-m",
        "uvicorn",
        "demo_project.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ws",
        "none",
        "--lifespan",
        "off",
        "--no-access-log",
        "--log-level",
        "warning",
        "--timeout-graceful-shutdown",
        "1",
    ],
    "daphne": lambda port: [
        sys.executable,
        "-m",
        "daphne",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "-v",
        "0",
        "demo_project.asgi:application",
    ],
}


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"server on port {port} did not start")


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(
    request: pytest.FixtureRequest,
    project: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    port = free_port()
    # A file, not a pipe: a chatty server can never block on a full pipe nobody reads.
    log_path = tmp_path_factory.mktemp("logs") / f"{request.param}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            SERVERS[request.param](port),
            cwd=EXAMPLE,
            env=project["env"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_for_port(port, process)
        except (RuntimeError, TimeoutError) as error:
            raise RuntimeError(f"{error}\n{log_path.read_text(errors='replace')}") from None
        yield {"name": request.param, "port": port, "url": f"http://127.0.0.1:{port}", **project}
    finally:
        # start_new_session made the server the leader of its own process group (pgid == pid),
        # so this ends it and anything it spawned, and nothing else.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def gateway_headers(server: dict[str, Any], cid: str, *, connect: bool = False) -> dict[str, str]:
    """What API Gateway's HTTP_PROXY integration sends (plus the mapped id and secret)."""
    host = f"127.0.0.1:{server['port']}"
    headers = {
        "Host": host,
        "X-Forwarded-For": "198.51.100.20",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
        "X-Amzn-Trace-Id": "Root=1-6740a1b2-0123456789abcdef01234567",
        "X-Amzn-Apigateway-Api-Id": API_ID,
        "User-Agent": f"AmazonAPIGateway_{API_ID}",
        "Connectionid": cid,
        "X-Ws-Gateway-Secret": SECRET,
    }
    if connect:
        headers.update(
            {
                "Origin": f"http://{host}",
                "Cookie": f"sessionid={server['session_key']}",
                "Sec-WebSocket-Key": websocket_key(),
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
            }
        )
    return headers


async def wait_until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


async def test_connect_message_disconnect(server: dict[str, Any], endpoint: FaultEndpoint) -> None:
    token = server["tokens"].pop()
    cid = new_connection_id()
    url = server["url"]
    endpoint.plan.gone.add(cid)  # the socket is not open while $connect runs
    async with aiohttp.ClientSession() as http:
        connect_url = f"{url}/ws/connect?ws_token={token}&channel=room-e2e"
        async with http.post(connect_url, headers=gateway_headers(server, cid, connect=True)) as r:
            assert r.status == 200, await r.text()
        endpoint.plan.gone.discard(cid)  # API Gateway opened the socket
        await wait_until(lambda: bool(endpoint.received.get(cid)))
        welcome = json.loads(endpoint.received[cid][0])
        assert welcome["type"] == "welcome"
        assert welcome["channel"] == "room-e2e"
        assert endpoint.calls[cid] >= 1

        body = json.dumps({"action": "send_message", "message": "hello over HTTP"})
        async with http.post(
            f"{url}/ws/default", data=body, headers=gateway_headers(server, cid)
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

        async with http.post(f"{url}/ws/disconnect", headers=gateway_headers(server, cid)) as r:
            assert r.status == 200, await r.text()
        async with http.post(
            f"{url}/ws/default", data=body, headers=gateway_headers(server, cid)
        ) as r:
            assert r.status == 401


async def test_refusals_over_real_http(server: dict[str, Any]) -> None:
    url = server["url"]
    cid = new_connection_id()
    async with aiohttp.ClientSession() as http:
        headers = gateway_headers(server, cid, connect=True)
        async with http.get(f"{url}/ws/connect", headers=headers) as r:
            assert r.status == 405
        bad_secret = {**headers, "X-Ws-Gateway-Secret": "x" * 40}
        async with http.post(f"{url}/ws/connect?ws_token=0", headers=bad_secret) as r:
            assert r.status == 403
        async with http.post(f"{url}/ws/connect?ws_token={'0' * 64}", headers=headers) as r:
            assert r.status == 401
        token = server["tokens"].pop()
        evil = {**headers, "Origin": "https://evil.test"}
        async with http.post(f"{url}/ws/connect?ws_token={token}", headers=evil) as r:
            assert r.status == 403
        async with http.post(f"{url}/ws/default", data=b"x" * 200_000, headers=headers) as r:
            assert r.status == 413


async def test_required_headers_survive_real_servers(server: dict[str, Any]) -> None:
    """Evidence for requiring Host and Content-Length: aiohttp sends ``Content-Length: 0`` on an
    empty POST (as API Gateway does) and uvicorn/daphne pass it to Django, so a bodiless
    ``$disconnect`` is judged on its merits (401: no such session), not refused for a missing
    header; only a chunked request lacks Content-Length, and it is refused (400)."""
    url = server["url"]
    cid = new_connection_id()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/ws/disconnect", headers=gateway_headers(server, cid)) as r:
            assert r.status == 401, await r.text()
        body = json.dumps({"action": "send_message", "message": "x"}).encode()
        async with http.post(
            f"{url}/ws/default", data=body, headers=gateway_headers(server, cid), chunked=True
        ) as r:
            assert r.status == 400, await r.text()
            assert (await r.json())["error"] == "missing_headers"
