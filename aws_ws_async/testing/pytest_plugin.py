"""pytest fixture ``ws_client``: browser-like WebSocket clients through ``ws_gateway_emulator``.

Enable it (it brings the emulator's fixtures with it) in a ``conftest.py``::

    pytest_plugins = ["aws_ws_async.testing.pytest_plugin"]

and test your own view end to end::

    @pytest.mark.django_db(transaction=True)
    async def test_echo(ws_client, django_user_model):
        user = await django_user_model.objects.acreate_user(username="u", password="p")
        async with ws_client(user=user, channel="lobby") as ws:
            await ws.send_json({"action": "send_message", "message": "hi"})
            assert (await ws.receive_json(timeout=5))["message"] == "hi"

The fixture creates (or reuses) the local ``ApiGateway`` row of the emulator's api id, so
``$connect`` accepts it, and points ``AWS_WS_ASYNC["management_endpoint_url"]`` at the emulator
for the test, so broadcasts from your views reach the client. The backend is the emulator's
target (``live_server`` by default; override ``ws_gateway_emulator_config`` to use an ASGI
server). Tests need ``django_db(transaction=True)``: the server's threads read the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from aws_ws_async.emulator.server import EmulatorThread
from aws_ws_async.testing.client import WebSocketTestClient

pytest_plugins = ["aws_ws_async.emulator.pytest_plugin"]

WebSocketClientFactory = Callable[..., WebSocketTestClient]


@pytest.fixture
def ws_client(ws_gateway_emulator: EmulatorThread, settings: Any) -> WebSocketClientFactory:
    """``ws_client(user=None, username=None, password=None, channel=None, **options)`` -> an
    unopened :class:`~aws_ws_async.testing.client.WebSocketTestClient`; ``async with`` it."""
    from aws_ws_async.testing.local_gateway import ensure_local_gateway

    emulator = ws_gateway_emulator
    config = emulator.config
    ensure_local_gateway(
        config.api_id,
        target_base_endpoint=config.target_base_url,
        stage=config.stage,
        api_endpoint=emulator.url.removesuffix(f"/{config.stage}"),
    )
    management = emulator.management_url.removesuffix(f"/{config.stage}") + "/{stage}"
    settings.AWS_WS_ASYNC = {
        **getattr(settings, "AWS_WS_ASYNC", {}),
        "management_endpoint_url": management,
    }
    target = urlsplit(config.target_base_url)
    backend = f"{target.scheme}://{target.netloc}"

    def factory(**options: Any) -> WebSocketTestClient:
        return WebSocketTestClient(emulator.url, backend, **options)

    return factory
