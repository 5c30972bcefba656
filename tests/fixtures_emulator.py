"""Fixtures of the emulator area: the public plugin's fixtures, plus a recording fake backend.

The fake backend is a real aiohttp server on 127.0.0.1 that records every integration request
the emulator makes, so tests check the wire (headers, query strings, bodies), not our objects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from aws_ws_async.emulator import EmulatorConfig, GatewayEmulator
from aws_ws_async.emulator.pytest_plugin import (  # noqa: F401 - registered as fixtures
    asgi_server_factory,
    ws_gateway_emulator,
    ws_gateway_emulator_config,
    ws_gateway_emulator_factory,
)
from aws_ws_async.testing.pytest_plugin import ws_client  # noqa: F401 - registered as a fixture


@dataclass
class Recorded:
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingBackend:
    """An HTTP backend that answers integrations and remembers them."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    connect_status: int = 200
    connect_headers: dict[str, str] = field(default_factory=dict)
    message_status: int = 200
    message_body: bytes = b""
    #: Awaited inside the $connect handler (while the upgrade is still pending).
    on_connect: Callable[[Recorded], Awaitable[None]] | None = None
    #: Awaited inside each message handler (a slow or hanging backend).
    on_message: Callable[[Recorded], Awaitable[None]] | None = None
    #: Awaited inside each $disconnect handler.
    on_disconnect: Callable[[Recorded], Awaitable[None]] | None = None
    connect_delay: float = 0.0
    _event: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        record = Recorded(
            path=request.path,
            query_string=request.rel_url.raw_query_string,
            headers=dict(request.headers),
            body=await request.read(),
        )
        self.requests.append(record)
        self._event.set()
        if request.path.endswith("/connect"):
            if self.connect_delay:
                await asyncio.sleep(self.connect_delay)
            if self.on_connect is not None:
                await self.on_connect(record)
            return web.Response(status=self.connect_status, headers=self.connect_headers)
        if request.path.endswith("/disconnect"):
            if self.on_disconnect is not None:
                await self.on_disconnect(record)
            return web.Response(status=200)
        if self.on_message is not None:
            await self.on_message(record)
        return web.Response(status=self.message_status, body=self.message_body)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    def by_path(self, suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(suffix)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (checked whenever a request arrives)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._event.wait(), 0.05)


@pytest.fixture
async def recording_backend() -> AsyncIterator[RecordingBackend]:
    backend = RecordingBackend()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", backend.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    backend.url = f"http://127.0.0.1:{port}/ws/"
    try:
        yield backend
    finally:
        await runner.cleanup()


EmulatorMaker = Callable[..., Awaitable[GatewayEmulator]]


@pytest.fixture
async def make_emulator(recording_backend: RecordingBackend) -> AsyncIterator[EmulatorMaker]:
    """``await make_emulator(**fields)``: an emulator on this loop in front of the backend."""
    started: list[GatewayEmulator] = []

    async def make(**fields: Any) -> GatewayEmulator:
        fields.setdefault("target_base_url", recording_backend.url)
        emulator = GatewayEmulator(EmulatorConfig(**fields))
        await emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in reversed(started):
        await emulator.stop()


@dataclass
class DjangoServer:
    """The project's real ASGI application under uvicorn, in a thread of this process."""

    url: str
    port: int


@pytest.fixture
def django_asgi_server(asgi_server_factory: Any) -> DjangoServer:  # noqa: F811
    """The project's ASGI application under uvicorn (``--ws none``), in a thread of this process.

    It shares the test database and settings overrides; tests that use it need
    ``django_db(transaction=True)`` so its threads see committed rows.
    """
    from asgiref.sync import sync_to_async
    from django.core.asgi import get_asgi_application
    from django.db import connections

    # Work started outside a request (welcome messages, broadcasts) runs its ORM calls in
    # asgiref's shared sync thread; close that thread's connections so the test database can be
    # dropped afterwards.
    server = asgi_server_factory(
        get_asgi_application(), before_stop=sync_to_async(connections.close_all)
    )
    return DjangoServer(url=server.url, port=server.port)
