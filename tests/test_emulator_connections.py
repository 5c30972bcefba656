"""The emulator's ``@connections`` API, through a real aiobotocore client and raw HTTP.

The answers must match the AWS notes (section 2): status codes, ``x-amzn-errortype`` headers that
botocore turns into the modelled exceptions, 204 on DELETE and 410 while ``$connect`` runs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aioboto3
import aiohttp
import pytest
from botocore.config import Config

from aws_ws_async.emulator import EmulatorConfig, Faults, GatewayEmulator, Limits
from tests.fixtures_emulator import EmulatorMaker, RecordingBackend

pytestmark = pytest.mark.e2e

SIGNED = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/execute-api/"
    "aws4_request, SignedHeaders=host;x-amz-date, Signature=0123abcd"
}


@pytest.fixture
async def emulator(make_emulator: EmulatorMaker) -> GatewayEmulator:
    return await make_emulator(stage="test")


def client_for(emulator: GatewayEmulator) -> Any:
    session = aioboto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return session.client(
        "apigatewaymanagementapi",
        endpoint_url=emulator.management_url,
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture
async def connected(
    emulator: GatewayEmulator,
) -> AsyncIterator[tuple[aiohttp.ClientWebSocketResponse, str]]:
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url, headers={"User-Agent": "test-agent/2"})
        [connection_id] = emulator.connection_ids()
        yield ws, connection_id
        await ws.close()


async def test_post_get_delete_with_aiobotocore(
    emulator: GatewayEmulator,
    connected: tuple[aiohttp.ClientWebSocketResponse, str],
    recording_backend: RecordingBackend,
) -> None:
    ws, connection_id = connected
    async with client_for(emulator) as client:
        response = await client.post_to_connection(ConnectionId=connection_id, Data=b'{"a": 1}')
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
        message = await asyncio.wait_for(ws.receive(), 5)
        assert (message.type, message.data) == (aiohttp.WSMsgType.TEXT, '{"a": 1}')

        info = await client.get_connection(ConnectionId=connection_id)
        assert info["ResponseMetadata"]["HTTPStatusCode"] == 200
        assert isinstance(info["ConnectedAt"], datetime)
        assert info["LastActiveAt"] >= info["ConnectedAt"]
        assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "test-agent/2"}

        deleted = await client.delete_connection(ConnectionId=connection_id)
        assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
        closing = await asyncio.wait_for(ws.receive(), 5)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1000)

        with pytest.raises(client.exceptions.GoneException):
            await client.post_to_connection(ConnectionId=connection_id, Data=b"late")
        with pytest.raises(client.exceptions.GoneException):
            await client.get_connection(ConnectionId=connection_id)
        with pytest.raises(client.exceptions.GoneException):
            await client.delete_connection(ConnectionId=connection_id)
    # DeleteConnection is followed by $disconnect, as in AWS.
    await recording_backend.wait_for(lambda: bool(recording_backend.by_path("/disconnect")))


async def test_modelled_errors_reach_botocore(
    emulator: GatewayEmulator, connected: tuple[aiohttp.ClientWebSocketResponse, str]
) -> None:
    _, connection_id = connected
    async with client_for(emulator) as client:
        with pytest.raises(client.exceptions.GoneException) as gone:
            await client.post_to_connection(ConnectionId="Tm90SGVyZUF0QWw=", Data=b"x")
        assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410

        with pytest.raises(client.exceptions.PayloadTooLargeException) as large:
            await client.post_to_connection(ConnectionId=connection_id, Data=b"x" * (131072 + 1))
        assert large.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413

        emulator.throttle_next(1)
        with pytest.raises(client.exceptions.LimitExceededException) as limited:
            await client.post_to_connection(ConnectionId=connection_id, Data=b"x")
        assert limited.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        # Only the next one was throttled; 128 KB exactly is allowed.
        await client.post_to_connection(ConnectionId=connection_id, Data=b"x" * 131072)
    assert emulator.stats["gone"] == 1
    assert emulator.stats["too_large"] == 1
    assert emulator.stats["throttled"] == 1
    assert emulator.stats["posted"] == 1


async def raw(
    method: str, url: str, *, headers: dict[str, str] | None = None, data: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers, data=data) as response,
    ):
        return response.status, dict(response.headers), await response.read()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer abc"},
        {"Authorization": "AWS4-HMAC-SHA256 Credential=x"},
    ],
)
async def test_requests_without_a_sigv4_header_are_forbidden(
    emulator: GatewayEmulator,
    connected: tuple[aiohttp.ClientWebSocketResponse, str],
    headers: dict[str, str],
) -> None:
    _, connection_id = connected
    url = f"{emulator.management_url}/@connections/{quote(connection_id, safe='')}"
    for method in ("POST", "GET", "DELETE"):
        status, response_headers, body = await raw(method, url, headers=headers, data=b"x")
        assert status == 403
        assert response_headers["x-amzn-errortype"] == "ForbiddenException"
        assert body == b'{"message": "Forbidden"}'
    assert emulator.connection_ids() == [connection_id]  # nothing was deleted


async def test_raw_answers_match_the_reference(
    emulator: GatewayEmulator, connected: tuple[aiohttp.ClientWebSocketResponse, str]
) -> None:
    ws, connection_id = connected
    encoded = quote(connection_id, safe="")
    assert "%3D" in encoded
    base = emulator.management_url
    port_only = base.rsplit("/", 1)[0]

    # With the stage, percent-encoded id; and the stage-less path moto-style clients use.
    status, headers, body = await raw("POST", f"{base}/@connections/{encoded}", headers=SIGNED)
    assert (status, body) == (200, b"")
    assert "x-amzn-RequestId" in headers
    status, _, _ = await raw("POST", f"{port_only}/@connections/{encoded}", headers=SIGNED)
    assert status == 200

    # A different stage is another API stage: forbidden, not gone.
    status, headers, _ = await raw(
        "POST", f"{port_only}/other/@connections/{encoded}", headers=SIGNED
    )
    assert (status, headers["x-amzn-errortype"]) == (403, "ForbiddenException")

    status, headers, body = await raw("GET", f"{base}/@connections/{encoded}", headers=SIGNED)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    info = json.loads(body)
    assert set(info) == {"connectedAt", "identity", "lastActiveAt"}  # wire names (camelCase)
    assert info["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "test-agent/2"}
    assert info["connectedAt"].endswith("Z")

    for unknown in ("bm9uZQ%3D%3D", "with%2Fslash", "a/b"):
        status, headers, _ = await raw("POST", f"{base}/@connections/{unknown}", headers=SIGNED)
        assert (status, headers["x-amzn-errortype"]) == (410, "GoneException")

    big = b"x" * (128 * 1024 + 1)
    status, headers, body = await raw(
        "POST", f"{base}/@connections/{encoded}", headers=SIGNED, data=big
    )
    assert (status, headers["x-amzn-errortype"]) == (413, "PayloadTooLargeException")
    assert b"message" in body

    status, headers, body = await raw("DELETE", f"{base}/@connections/{encoded}", headers=SIGNED)
    assert (status, body) == (204, b"")
    received = [await asyncio.wait_for(ws.receive(), 5) for _ in range(3)]
    assert [m.type for m in received] == [
        aiohttp.WSMsgType.TEXT,
        aiohttp.WSMsgType.TEXT,
        aiohttp.WSMsgType.CLOSE,
    ]


async def test_chunked_upload_over_the_limit_is_413(
    emulator: GatewayEmulator, connected: tuple[aiohttp.ClientWebSocketResponse, str]
) -> None:
    _, connection_id = connected

    async def body() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 30_000

    url = f"{emulator.management_url}/@connections/{quote(connection_id, safe='')}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body(), headers=SIGNED) as response,
    ):
        assert response.status == 413
        assert response.headers["x-amzn-errortype"] == "PayloadTooLargeException"


async def test_large_posts_reach_the_client_in_32kb_frames(
    emulator: GatewayEmulator, connected: tuple[aiohttp.ClientWebSocketResponse, str]
) -> None:
    ws, connection_id = connected
    payload = ("é" * 50_000).encode()  # 100 KB of two-byte characters
    url = f"{emulator.management_url}/@connections/{quote(connection_id, safe='')}"
    status, _, _ = await raw("POST", url, headers=SIGNED, data=payload)
    assert status == 200
    message = await asyncio.wait_for(ws.receive(), 5)
    assert message.type is aiohttp.WSMsgType.TEXT
    assert message.data == payload.decode()
    status, _, _ = await raw("POST", url, headers=SIGNED, data=b"\xff\x00binary")
    message = await asyncio.wait_for(ws.receive(), 5)
    assert (message.type, message.data) == (aiohttp.WSMsgType.BINARY, b"\xff\x00binary")


async def test_outgoing_frames_never_exceed_the_frame_limit(emulator: GatewayEmulator) -> None:
    from tests.test_emulator import raw_connect

    reader, writer = await raw_connect(emulator.port, "test")
    [connection_id] = emulator.connection_ids()
    payload = b"a" * 100_000
    url = f"{emulator.management_url}/@connections/{quote(connection_id, safe='')}"
    assert (await raw("POST", url, headers=SIGNED, data=payload))[0] == 200
    sizes, opcodes, fins, received = [], [], [], b""
    while len(received) < len(payload):
        head = await asyncio.wait_for(reader.readexactly(2), 5)
        size = head[1] & 0x7F
        if size == 126:
            size = int.from_bytes(await reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await reader.readexactly(8), "big")
        received += await reader.readexactly(size)
        sizes.append(size)
        opcodes.append(head[0] & 0x0F)
        fins.append(bool(head[0] & 0x80))
    assert received == payload
    assert sizes == [32768, 32768, 32768, 100_000 - 3 * 32768]
    assert opcodes == [1, 0, 0, 0]
    assert fins == [False, False, False, True]
    writer.close()


async def test_throttle_rate_and_latency(make_emulator: EmulatorMaker) -> None:
    emulator = await make_emulator(faults=Faults(throttle_rate=1.0, latency=0.2))
    url = f"{emulator.management_url}/@connections/abc%3D"
    started = time.monotonic()
    status, headers, _ = await raw("POST", url, headers=SIGNED)
    assert time.monotonic() - started >= 0.2
    assert (status, headers["x-amzn-errortype"]) == (429, "LimitExceededException")


async def test_seeded_throttle_rate_is_reproducible(make_emulator: EmulatorMaker) -> None:
    outcomes = []
    for _ in range(2):
        emulator = await make_emulator(faults=Faults(throttle_rate=0.5, seed=7))
        url = f"{emulator.management_url}/@connections/abc%3D"
        outcomes.append([(await raw("GET", url, headers=SIGNED))[0] for _ in range(20)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) == {410, 429}


async def test_full_client_buffer_answers_429(make_emulator: EmulatorMaker) -> None:
    """A client that stops reading looks like throttling, as the AWS notes warn."""
    emulator = await make_emulator(limits=Limits(max_client_buffer_bytes=256 * 1024))
    from tests.test_emulator import raw_connect

    _reader, writer = await raw_connect(emulator.port, "local")  # never reads again
    [connection_id] = emulator.connection_ids()
    url = f"{emulator.management_url}/@connections/{quote(connection_id, safe='')}"
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(400):  # up to ~50 MB; the kernel buffers fill long before
            async with session.post(url, data=b"b" * 131072, headers=SIGNED) as response:
                statuses.append(response.status)
                if response.status != 200:
                    assert response.headers["x-amzn-errortype"] == "LimitExceededException"
                    break
    assert statuses[-1] == 429
    writer.close()


def test_thread_emulator_from_sync_code(ws_gateway_emulator_factory: Any) -> None:
    """The public fixture runs the emulator on its own loop, usable without asyncio."""
    import urllib.error
    import urllib.request

    from tests.conftest import free_port

    gateway = ws_gateway_emulator_factory(
        EmulatorConfig(f"http://127.0.0.1:{free_port()}/ws/", stage="sync")
    )
    assert gateway.url == f"ws://127.0.0.1:{gateway.port}/sync"
    request = urllib.request.Request(
        f"{gateway.management_url}/@connections/abc%3D", headers=SIGNED, method="GET"
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 410
    assert info.value.headers["x-amzn-errortype"] == "GoneException"
    info.value.close()
    assert gateway.connection_ids() == []
    gateway.throttle_next(1)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 429
    info.value.close()


@pytest.mark.django_db(transaction=True)
def test_default_fixture_fronts_the_live_server(ws_gateway_emulator: Any) -> None:
    """``ws_gateway_emulator`` posts to pytest-django's live_server at /ws/ (tests.urls)."""
    from aws_ws_async.models import WebSocketSession

    async def handshake() -> int:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(ws_gateway_emulator.url, headers={"Origin": "http://x"})
            return info.value.status

    status = asyncio.run(handshake())
    # The test view refused the unknown API id / missing token: a Django answer, not a 502.
    assert 400 <= status < 500
    [call] = ws_gateway_emulator.calls
    assert (call.event, call.status) == ("CONNECT", status)
    assert call.url.endswith("/ws/connect")
    assert WebSocketSession.objects.count() == 0
