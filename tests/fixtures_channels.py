"""Channel tests' shared fixtures and helpers (registered by tests/conftest.py).

The channel test files drive the real view through Django's ASGI handler with the headers API
Gateway sends, and read what the handlers posted back from the in-memory transport's
``network`` (the HTTP boundary). These helpers were copied in four files; one copy keeps the
way a session is opened and a frame is read the same everywhere.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from aws_ws_async.emulator import EmulatorConfig
from aws_ws_async.testing import network

#: Gateway-shaped management URL; the in-memory transport answers for every api id and stage.
MEMORY_MANAGEMENT_URL = "https://{api_id}.execute-api.us-east-1.amazonaws.com/{stage}"


@pytest.fixture
def memory(ws_settings: Any) -> Any:
    """The in-memory transport (reset), with the views' secret and limits of ``ws_settings``."""
    ws_settings.AWS_WS_ASYNC = {
        **ws_settings.AWS_WS_ASYNC,
        "management_endpoint_url": MEMORY_MANAGEMENT_URL,
        "transport": "aws_ws_async.testing.InMemoryTransport",
    }
    network.reset()
    return network


async def open_session(browser: Any, channel: str = "room", prefix: str = "/ws") -> str:
    """``$connect`` a new connection to ``channel`` as ``browser``; its connection id."""
    from tests.fixtures_views import connect, new_connection_id

    cid = new_connection_id()
    response = await connect(browser, cid, channel=channel, path=f"{prefix}/connect")
    assert response.status_code == 200, response.content
    return cid


async def send(cid: str, body: dict[str, Any], prefix: str = "/ws") -> Any:
    """One message frame of connection ``cid`` through the ``$default`` route."""
    from tests.fixtures_views import gateway_headers, post

    return await post(f"{prefix}/default", gateway_headers(cid), json.dumps(body))


def frames(cid: str) -> list[dict[str, Any]]:
    """Every frame posted to ``cid`` so far, decoded, in order."""
    return [json.loads(body) for body in network.posts_to(cid)]


def serve_urlconf(asgi_server_factory: Any, settings: Any, urlconf: str) -> EmulatorConfig:
    """Serve ``urlconf`` under a real ASGI server; the emulator config that points at it.

    For the ``ws_gateway_emulator_config`` override of an end-to-end module: the module's
    ``urlpatterns`` become the site, and the server closes its thread's DB connections on stop
    (PostgreSQL would otherwise keep the test database busy).
    """
    from django.core.asgi import get_asgi_application
    from django.db import connections

    settings.ROOT_URLCONF = urlconf
    settings.LOGIN_URL = "/accounts/login/"
    server = asgi_server_factory(
        get_asgi_application(), before_stop=sync_to_async(connections.close_all)
    )
    return EmulatorConfig(f"{server.url}/ws/", stage="test")
