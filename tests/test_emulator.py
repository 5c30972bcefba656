"""The emulator's WebSocket side against a real recording backend on loopback.

Covers the ``$connect`` handshake (what the backend receives, acceptance and refusal), message
routing, ``$disconnect``, API Gateway's limits (frame and message size, binary frames, idle
timeout, maximum age) and shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from typing import Any

import aiohttp
import pytest

from aws_ws_async.emulator import Faults, Limits
from tests.fixtures_emulator import EmulatorMaker, Recorded, RecordingBackend

pytestmark = pytest.mark.e2e

SECRET = "s" * 40


async def open_ws(
    session: aiohttp.ClientSession, url: str, **kwargs: object
) -> aiohttp.ClientWebSocketResponse:
    return await session.ws_connect(url, autoclose=False, **kwargs)  # type: ignore[arg-type]


async def next_message(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    return await asyncio.wait_for(ws.receive(), 5)


# --- $connect ----------------------------------------------------------------------------------


async def test_connect_posts_what_an_http_proxy_integration_sends(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    emulator = await make_emulator(api_id="abc123", stage="dev", gateway_secret=SECRET)
    async with aiohttp.ClientSession() as session:
        ws = await open_ws(
            session,
            emulator.url + "?channel=room-1&ws_token=t%3D1",
            headers={
                "Cookie": "sessionid=abc; csrftoken=x",
                "Origin": "http://127.0.0.1:8000",
                "User-Agent": "pytest-browser/1.0",
                "Accept-Language": "en",
            },
        )
        [connect] = recording_backend.by_path("/ws/connect")
        headers = connect.headers
        assert connect.query_string == "channel=room-1&ws_token=t%3D1"
        assert connect.body == b""
        assert headers["Cookie"] == "sessionid=abc; csrftoken=x"
        assert headers["Origin"] == "http://127.0.0.1:8000"
        assert len(base64.b64decode(headers["Sec-WebSocket-Key"])) == 16
        assert headers["Sec-WebSocket-Version"] == "13"
        assert headers["User-Agent"] == "AmazonAPIGateway_abc123"
        assert headers["X-Amzn-Apigateway-Api-Id"] == "abc123"
        assert headers["X-Forwarded-For"] == "127.0.0.1"
        assert headers["X-Forwarded-Proto"] == "https"
        assert headers["X-Forwarded-Port"] == "443"
        assert headers["X-Amzn-Trace-Id"].startswith("Root=1-")
        assert headers["X-Ws-Gateway-Secret"] == SECRET
        assert headers["Host"] == recording_backend.url.split("/")[2]
        assert headers["Content-Length"] == "0"
        # Only the handshake headers API Gateway forwards; never Upgrade/Connection.
        for absent in ("Accept-Language", "Upgrade", "Sec-WebSocket-Accept"):
            assert absent not in headers
        assert headers.get("Connection", "").lower() != "upgrade"
        connection_id = headers["Connectionid"]
        assert emulator.connection_ids() == [connection_id]
        await ws.close()


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500])
async def test_non_2xx_connect_refuses_the_upgrade_with_that_status(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend, status: int
) -> None:
    recording_backend.connect_status = status
    emulator = await make_emulator()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(emulator.url)
    assert info.value.status == status
    assert emulator.connection_ids() == []
    # A refused connection never existed, so no $disconnect follows.
    await asyncio.sleep(0.05)
    assert recording_backend.paths() == ["/ws/connect"]


async def test_unreachable_backend_gives_502(make_emulator: EmulatorMaker) -> None:
    from tests.conftest import free_port

    emulator = await make_emulator(target_base_url=f"http://127.0.0.1:{free_port()}/ws/")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(emulator.url)
    assert info.value.status == 502


async def test_backend_timeout_gives_504(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    recording_backend.connect_delay = 1.0
    emulator = await make_emulator(limits=Limits(integration_timeout=0.2))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(emulator.url)
    assert info.value.status == 504


async def test_wrong_stage_and_plain_http_are_refused(make_emulator: EmulatorMaker) -> None:
    emulator = await make_emulator(stage="prod")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(emulator.url.replace("/prod", "/other"))
        assert info.value.status == 403
        async with session.get(emulator.management_url) as response:
            assert response.status == 426


async def test_subprotocol_chosen_by_the_backend_is_relayed(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    recording_backend.connect_headers = {"Sec-WebSocket-Protocol": "chat.v2"}
    emulator = await make_emulator()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url, protocols=("chat.v1", "chat.v2"))
        assert ws.protocol == "chat.v2"
        [connect] = recording_backend.by_path("/connect")
        assert connect.headers["Sec-WebSocket-Protocol"] == "chat.v1,chat.v2"
        await ws.close()


async def test_post_during_connect_is_410_then_200_once_open(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    """The trap the DESIGN warns about: the connection does not exist until $connect returns."""
    emulator = await make_emulator()
    seen: dict[str, int] = {}
    auth = {"Authorization": "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=ab"}

    async def during_connect(record: Recorded) -> None:
        url = f"{emulator.management_url}/@connections/{record.headers['Connectionid']}"
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=b"hi", headers=auth) as response:
                seen["post"] = response.status
                seen["type"] = response.headers.get("x-amzn-errortype")  # type: ignore[assignment]
            async with session.get(url, headers=auth) as response:
                seen["get"] = response.status

    recording_backend.on_connect = during_connect
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        assert seen == {"post": 410, "type": "GoneException", "get": 410}
        [connection_id] = emulator.connection_ids()
        url = f"{emulator.management_url}/@connections/{connection_id}"
        async with session.post(url, data=b"now open", headers=auth) as response:
            assert response.status == 200
        message = await next_message(ws)
        assert message.data == "now open"
        await ws.close()


# --- messages ----------------------------------------------------------------------------------


async def test_messages_are_routed_by_the_selection_expression(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    custom = recording_backend.url.replace("/ws/", "/custom/send")
    emulator = await make_emulator(additional_routes={"sendmessage": custom}, gateway_secret=SECRET)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            emulator.url + "?channel=x", headers={"Cookie": "sessionid=abc", "Origin": "http://o"}
        )
        frames = ['{"action": "sendmessage", "text": "hi"}', '{"action": "other"}', "plain text"]
        for frame in frames:
            await ws.send_str(frame)
        await recording_backend.wait_for(lambda: len(recording_backend.requests) == 4)
        [sent] = recording_backend.by_path("/custom/send")
        defaults = recording_backend.by_path("/ws/default")
        assert sent.body == frames[0].encode()
        assert sorted(r.body for r in defaults) == sorted([frames[1].encode(), b"plain text"])
        connection_id = emulator.connection_ids()[0]
        for record in [sent, *defaults]:
            headers = record.headers
            assert record.query_string == ""
            assert headers["Connectionid"] == connection_id
            assert headers["User-Agent"] == "AmazonAPIGateway_emulator"
            assert headers["X-Ws-Gateway-Secret"] == SECRET
            assert headers["X-Forwarded-For"] == "127.0.0.1"
            # Frames carry no HTTP headers: nothing of the client's reaches message routes.
            for absent in ("Cookie", "Origin", "Sec-WebSocket-Key", "Content-Type"):
                assert absent not in headers
        await ws.close()


async def test_route_responses_send_the_backend_body_to_the_sender(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    recording_backend.message_body = b'{"pong": true}'
    emulator = await make_emulator(route_responses=True)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        await ws.send_str('{"action": "ping"}')
        assert (await next_message(ws)).data == '{"pong": true}'
        await ws.close()


async def test_no_default_route_answers_forbidden_frame(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    emulator = await make_emulator(default_route=False)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        await ws.send_str('{"action": "unknown"}')
        reply = (await next_message(ws)).json()
        assert reply["message"] == "Forbidden"
        assert reply["connectionId"] == emulator.connection_ids()[0]
        assert "requestId" in reply
        await ws.close()
    assert not recording_backend.by_path("/default")


async def test_integration_failure_on_a_message_tells_the_client(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    from tests.conftest import free_port

    dead = f"http://127.0.0.1:{free_port()}/nowhere"
    emulator = await make_emulator(additional_routes={"lost": dead})
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        await ws.send_str('{"action": "lost"}')
        assert (await next_message(ws)).json()["message"] == "Internal server error"
        await ws.close()


# --- $disconnect -------------------------------------------------------------------------------


async def test_client_close_posts_disconnect_after_the_socket_is_gone(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    emulator = await make_emulator()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        connection_id = emulator.connection_ids()[0]
        await ws.close()
    await recording_backend.wait_for(lambda: bool(recording_backend.by_path("/disconnect")))
    [disconnect] = recording_backend.by_path("/ws/disconnect")
    assert disconnect.headers["Connectionid"] == connection_id
    assert disconnect.body == b""
    assert disconnect.query_string == ""
    assert "Cookie" not in disconnect.headers
    assert emulator.connection_ids() == []


async def test_dropped_client_loses_its_disconnect(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    emulator = await make_emulator()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        connection_id = emulator.connection_ids()[0]
        assert await emulator.drop(connection_id) is True
        message = await next_message(ws)
        assert message.type in {aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR}
    await asyncio.sleep(0.1)
    assert emulator.connection_ids() == []
    assert not recording_backend.by_path("/disconnect")
    assert await emulator.drop("unknown=") is False


async def test_disconnect_loss_rate_one_never_posts_disconnect(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="aws_ws_async.emulator")
    emulator = await make_emulator(faults=Faults(disconnect_loss_rate=1.0))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        await ws.close()
    # Wait for the emulator's decision itself, not a fixed sleep: a late post on a loaded
    # machine would slip past a sleep, and a decision never taken now fails the wait.
    await recording_backend.wait_for(lambda: "losing $disconnect" in caplog.text)
    assert recording_backend.paths() == ["/ws/connect"]


# --- limits ------------------------------------------------------------------------------------


async def raw_connect(port: int, stage: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-made client, because aiohttp's never fragments what it sends."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /{stage} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert status.startswith(b"HTTP/1.1 101"), status
    return reader, writer


def masked(payload: bytes, opcode: int, fin: bool) -> bytes:
    from tests.test_emulator_units import client_frame

    return client_frame(payload, opcode, fin)


async def read_close_code(reader: asyncio.StreamReader) -> int:
    """Read server frames until a close frame; return its code."""
    while True:
        head = await asyncio.wait_for(reader.readexactly(2), 5)
        size = head[1] & 0x7F
        if size == 126:
            size = int.from_bytes(await reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(size)
        if head[0] & 0x0F == 0x8:
            return int.from_bytes(payload[:2], "big")


async def test_fragmented_message_up_to_128kb_is_accepted(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    emulator = await make_emulator()
    _reader, writer = await raw_connect(emulator.port, "local")
    text = ('{"action": "big", "data": "' + "x" * 100_000 + '"}').encode()
    chunks = [text[i : i + 32768] for i in range(0, len(text), 32768)]
    for index, chunk in enumerate(chunks):
        writer.write(masked(chunk, 0x1 if index == 0 else 0x0, index == len(chunks) - 1))
    await writer.drain()
    await recording_backend.wait_for(lambda: bool(recording_backend.by_path("/default")))
    assert recording_backend.by_path("/default")[0].body == text
    writer.close()


async def test_frame_over_32kb_closes_with_1009_and_is_not_delivered(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    emulator = await make_emulator()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        await ws.send_str("y" * (32 * 1024 + 1))  # one frame, as browsers send
        message = await next_message(ws)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == 1009
    await recording_backend.wait_for(lambda: bool(recording_backend.by_path("/disconnect")))
    assert not recording_backend.by_path("/default")


async def test_message_over_128kb_in_small_frames_closes_with_1009(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    emulator = await make_emulator()
    reader, writer = await raw_connect(emulator.port, "local")
    for index in range(5):  # 5 x 30 KB = 150 KB
        writer.write(masked(b"z" * 30_000, 0x1 if index == 0 else 0x0, index == 4))
    await writer.drain()
    assert await read_close_code(reader) == 1009
    writer.close()
    await asyncio.sleep(0.05)
    assert not recording_backend.by_path("/default")


async def test_binary_frame_closes_with_1003(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    emulator = await make_emulator()
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        await ws.send_bytes(b"\x00\x01")
        message = await next_message(ws)
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1003)
    assert not recording_backend.by_path("/default")


async def test_configured_limits_are_applied(make_emulator: EmulatorMaker) -> None:
    emulator = await make_emulator(limits=Limits(max_frame_bytes=10, max_message_bytes=20))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        await ws.send_str("x" * 11)
        message = await next_message(ws)
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1009)


async def test_idle_timeout_closes_with_1001_and_posts_disconnect(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    emulator = await make_emulator(limits=Limits(idle_timeout=1.0))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        await asyncio.sleep(0.6)
        await ws.send_str("keep me alive")  # activity resets the idle clock
        await asyncio.sleep(0.6)  # 1.2 s after connecting, 0.6 s after the last message
        assert emulator.connection_ids() != []
        message = await next_message(ws)
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1001)
        assert message.extra == "Idle timeout"
    await recording_backend.wait_for(lambda: bool(recording_backend.by_path("/disconnect")))


async def test_max_age_closes_even_an_active_connection(make_emulator: EmulatorMaker) -> None:
    emulator = await make_emulator(limits=Limits(max_connection_age=0.4))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)

        async def chatter() -> None:
            while not ws.closed:
                await ws.send_str("busy")
                await asyncio.sleep(0.05)

        task = asyncio.create_task(chatter())
        message = await next_message(ws)
        task.cancel()
        assert (message.type, message.data, message.extra) == (
            aiohttp.WSMsgType.CLOSE,
            1001,
            "Going away",
        )


async def test_stop_closes_clients_with_1001_and_posts_their_disconnects(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend
) -> None:
    emulator = await make_emulator()
    async with aiohttp.ClientSession() as session:
        clients = [await session.ws_connect(emulator.url) for _ in range(3)]
        stopping = asyncio.create_task(emulator.stop())
        for ws in clients:
            message = await next_message(ws)
            assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1001)
        await stopping
    assert len(recording_backend.by_path("/disconnect")) == 3
