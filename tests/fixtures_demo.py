"""The demo under test: ``example/run_demo.py`` as a subprocess, and aiohttp demo clients.

Two kinds of test drive the demo. The browser tests and the restart test start
``run_demo.py`` exactly as a user would (:func:`start_demo` / :func:`running_demo`); the
loopback end-to-end tests put the emulator in front of the chat view under uvicorn
(:func:`emulated_demo`) and talk to it as browser-like :class:`Client` s (:func:`make_client`).
Each of these was written twice; one copy keeps the start-up wait, the shutdown and the login
the same in every test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from asgiref.sync import sync_to_async

from aws_ws_async.emulator import EmulatorConfig, GatewayEmulator
from tests.conftest import free_port

if TYPE_CHECKING:  # imported at run time, before pytest registers it, its asserts
    from tests.fixtures_emulator import DjangoServer  # would not be rewritten

ROOT = Path(__file__).resolve().parent.parent
#: The last line run_demo.py prints once Django and the gateway both listen.
READY = "Press Ctrl-C to stop"
FAKE_SIGV4 = "AWS4-HMAC-SHA256 Credential=t/x, SignedHeaders=host, Signature=00"


@dataclass
class Demo:
    """A running ``run_demo.py``: its page URL, process, and everything it printed so far."""

    url: str
    process: subprocess.Popen[str]
    output: list[str]
    reader: threading.Thread
    db: Path
    gateway_port: int

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; killed if it is not gone in 30 s. Its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(30)
        return int(self.process.returncode)

    def text(self) -> str:
        return "".join(self.output)

    def delete_connections(self, ids: Iterable[str]) -> list[int]:
        """``DeleteConnection`` of each id through the demo gateway's ``@connections`` API,
        as a server would (the emulator checks that a signature is there, not its value)."""
        import urllib.error
        import urllib.request
        from urllib.parse import quote

        management = next(
            line.split("@connections: ")[1].strip()
            for line in self.text().splitlines()
            if "@connections: " in line
        )
        statuses = []
        for connection_id in ids:
            request = urllib.request.Request(
                f"{management}/@connections/{quote(connection_id, safe='')}",
                method="DELETE",
                headers={"Authorization": FAKE_SIGV4},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    statuses.append(response.status)
            except urllib.error.HTTPError as error:
                statuses.append(error.code)
        return statuses


def _pump(stream: Any, lines: queue.Queue[str], sink: list[str]) -> None:
    for line in stream:
        sink.append(line)
        lines.put(line)


def start_demo(db: Path, *extra: str) -> Demo:
    """``run_demo.py`` on free ports with the SQLite database ``db``, once it is ready.

    Its output is read by a thread all along (a full pipe would block the demo); the test
    fails with that output if the demo exits or is not ready within 60 s.
    """
    port, gateway_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")}
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "example" / "run_demo.py"),
            *("--port", str(port), "--gateway-port", str(gateway_port), "--db", str(db)),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(process.stdout, lines, output), daemon=True)
    reader.start()
    demo = Demo(f"http://127.0.0.1:{port}/", process, output, reader, db, gateway_port)
    deadline = time.monotonic() + 60
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            demo.stop()
            pytest.fail("the demo did not start:\n" + demo.text())
        if READY in line:
            return demo
        if process.poll() is not None and lines.empty():
            pytest.fail("the demo exited:\n" + demo.text())


@contextlib.contextmanager
def running_demo(db: Path, *extra: str) -> Iterator[Demo]:
    """:func:`start_demo`, stopped again at the end (whatever the test did)."""
    demo = start_demo(db, *extra)
    try:
        yield demo
    finally:
        demo.stop()


# --- the chat view behind the emulator, and clients of it -------------------------------------


@contextlib.asynccontextmanager
async def emulated_demo(
    settings: Any, server: DjangoServer, api_id: str, stage: str, secret: str, **app: Any
) -> AsyncIterator[tuple[GatewayEmulator, DjangoServer]]:
    """The emulator in front of ``server``, our settings and an ``ApiGateway`` row matching it.

    ``settings.ROOT_URLCONF`` is the caller's to set; ``app`` adds ``AWS_WS_ASYNC`` settings.
    """
    from aws_ws_async.models import ApiGateway

    emulator = GatewayEmulator(
        EmulatorConfig(f"{server.url}/ws/", api_id=api_id, stage=stage, gateway_secret=secret)
    )
    await emulator.start()
    settings.AWS_WS_ASYNC = {
        **settings.AWS_WS_ASYNC,
        "gateway_secret": secret,
        "management_endpoint_url": emulator.management_url.replace(f"/{stage}", "/{stage}"),
        **app,
    }
    await ApiGateway.objects.acreate(
        api_name=f"E2E {api_id}",
        api_id=api_id,
        stage_name=stage,
        target_base_endpoint=f"{server.url}/ws/",
    )
    try:
        yield emulator, server
    finally:
        await emulator.stop()


@pytest.fixture
def demo_stack_settings() -> dict[str, Any]:
    """``AWS_WS_ASYNC`` additions for :func:`demo_stack`; a module overrides it to add some."""
    return {}


@pytest.fixture
async def demo_stack(
    request: pytest.FixtureRequest,
    settings: Any,
    django_asgi_server: DjangoServer,
    demo_stack_settings: dict[str, Any],
) -> AsyncIterator[tuple[GatewayEmulator, DjangoServer]]:
    """:func:`emulated_demo` with the requesting test module as the URLconf."""
    settings.ROOT_URLCONF = request.module.__name__
    secret = "e2e-gateway-secret-" + "x" * 24
    async with emulated_demo(
        settings, django_asgi_server, "e2edemo", "e2e", secret, **demo_stack_settings
    ) as running:
        yield running


class Client:
    """One browser-like user: a session cookie, a token, and a socket through the emulator."""

    def __init__(self, http: aiohttp.ClientSession, server: DjangoServer, cookie: str) -> None:
        self.http = http
        self.server = server
        self.csrf = secrets.token_hex(16)
        self.cookie = f"{cookie}; csrftoken={self.csrf}"
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.connection_id = ""
        #: Presence frames seen while waiting for others (the demo turns join/leave events on).
        self.presence: list[dict[str, Any]] = []

    async def token(self) -> str:
        async with self.http.post(
            f"{self.server.url}/ws-token/",
            headers={"Cookie": self.cookie, "X-CSRFToken": self.csrf},
        ) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["token"])

    async def join(self, emulator: GatewayEmulator, channel: str) -> dict[str, Any]:
        before = set(emulator.connection_ids())
        self.ws = await self.http.ws_connect(
            f"{emulator.url}?channel={channel}&ws_token={await self.token()}",
            headers={"Cookie": self.cookie, "Origin": self.server.url},
        )
        [self.connection_id] = set(emulator.connection_ids()) - before
        welcome = await self.receive()
        assert welcome["type"] == "welcome"
        assert welcome["channel"] == channel
        return welcome

    async def send(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"action": "send_message", "message": text}))

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        """The next frame that is not a presence event (those are kept in ``presence``)."""
        assert self.ws is not None
        while True:
            message = await asyncio.wait_for(self.ws.receive(), timeout)
            assert message.type is aiohttp.WSMsgType.TEXT, message
            frame = dict(json.loads(message.data))
            if frame.get("type") != "presence":
                return frame
            self.presence.append(frame)


async def make_client(http: aiohttp.ClientSession, server: DjangoServer, email: str) -> Client:
    """A new user ``email``, logged in (its session cookie), as a :class:`Client`."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import AsyncClient

    manager = get_user_model()._default_manager
    user = await sync_to_async(manager.create_user)(email=email, password="pw-12345!")
    django_client = AsyncClient()
    await django_client.aforce_login(user)
    cookie = django_client.cookies[settings.SESSION_COOKIE_NAME].value
    return Client(http, server, f"{settings.SESSION_COOKIE_NAME}={cookie}")
