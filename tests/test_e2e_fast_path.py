"""End to end: the example project's fast entry point with the async database path, under a
real uvicorn and a real daphne on PostgreSQL.

``demo_project.asgi:gateway_application`` (``GatewayASGIHandler``) with
``DEMO_ASYNC_DATABASE=1``: the test plays API Gateway as ``test_e2e_servers`` does (``$connect``
with a token, a message that broadcasts, ``$disconnect``) and checks that the server really ran
the message and ``$disconnect`` statements on its async pool (its own DEBUG log says when it
opened one), with the same answers and rows as the sync path gives.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, ClassVar

import aiohttp
import pytest

from aws_ws_async.testing import FaultEndpoint
from tests.e2e_harness import (
    ASGI_SERVERS,
    DEMO_LAYOUT,
    DemoProject,
    ProjectLayout,
    RunningServer,
    serve,
    wait_until,
)
from tests.fixtures_views import new_connection_id
from tests.test_e2e_servers import SETUP, api_headers

pytestmark = [pytest.mark.e2e]


class FastDemoProject(DemoProject):
    """The example project served through its ``gateway_application``, async path on."""

    layout: ClassVar[ProjectLayout] = replace(
        DEMO_LAYOUT, asgi_app="demo_project.asgi:gateway_application"
    )

    def project_env(self, postgres: bool, pg: dict[str, str]) -> dict[str, str]:
        return {
            **super().project_env(postgres, pg),
            "DEMO_ASYNC_DATABASE": "1",
            "DEMO_LOG_LEVEL": "DEBUG",  # the pool's "opened" line is the evidence
        }


@pytest.fixture(scope="module")
def fast_project(
    tmp_path_factory: pytest.TempPathFactory, e2e_endpoint: FaultEndpoint
) -> Iterator[FastDemoProject]:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the async database path is PostgreSQL only (AWS_WS_ASYNC_TEST_DB=postgres)")
    with FastDemoProject(
        tmp_path_factory.mktemp("fastdemo"), management_endpoint_url=e2e_endpoint.url
    ) as project:
        yield project


@pytest.fixture(scope="module")
def fast_login(fast_project: FastDemoProject) -> dict[str, Any]:
    return dict(fast_project.shell_json(SETUP))


@pytest.fixture(scope="module", params=ASGI_SERVERS)
def fast_server(
    request: pytest.FixtureRequest,
    fast_project: FastDemoProject,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    with serve(request.param, fast_project, tmp_path_factory.mktemp("logs")) as server:
        yield server


async def test_connect_message_disconnect_on_the_async_path(
    fast_server: RunningServer,
    fast_project: FastDemoProject,
    e2e_endpoint: FaultEndpoint,
    fast_login: dict[str, Any],
) -> None:
    server, endpoint = fast_server, e2e_endpoint
    token = fast_login["tokens"].pop()
    cid = new_connection_id()
    endpoint.plan.gone.add(cid)  # the socket is not open while $connect runs
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/ws/connect?ws_token={token}&channel=room-fast",
            headers=api_headers(server, cid, fast_login, connect=True),
        ) as r:
            assert r.status == 200, await r.text()
        endpoint.plan.gone.discard(cid)
        await wait_until(lambda: bool(endpoint.received.get(cid)))
        assert json.loads(endpoint.received[cid][0])["type"] == "welcome"

        body = json.dumps({"action": "send_message", "message": "hello, fast path"})
        async with http.post(
            f"{server.url}/ws/default", data=body, headers=api_headers(server, cid, fast_login)
        ) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["delivered"] == 1
        frame = json.loads(endpoint.received[cid][-1])
        assert (frame["type"], frame["data"]["message"]) == ("message", "hello, fast path")

        stranger = api_headers(server, new_connection_id(), fast_login)
        async with http.post(f"{server.url}/ws/default", data=body, headers=stranger) as r:
            assert r.status == 401  # no such connection: refused, on the async path too

        for expected in (200, 401):  # the second $disconnect finds it closed already
            async with http.post(
                f"{server.url}/ws/disconnect", headers=api_headers(server, cid, fast_login)
            ) as r:
                assert r.status == expected, await r.text()
    row = fast_project.shell_json(
        "import json; from aws_ws_async.models import WebSocketSession as S; "
        f"s = S.objects.get(connection_id={cid!r}); "
        "print(json.dumps([s.connected, s.disconnect_reason]))"
    )
    assert row == [False, "client"]
    assert "opened the async pool of 'default'" in server.log()
