"""``Limits.idle_resets_on_outbound`` / ``--idle-inbound-only``: whether ``@connections`` posts
count as activity for the idle timeout (AWS: "either direction", the default). The browser
channels test needs the stricter reading to force an idle close while broadcasting."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from aws_ws_async.emulator import Limits
from aws_ws_async.emulator.cli import build_config
from tests.fixtures_emulator import EmulatorMaker

SIGV4 = "AWS4-HMAC-SHA256 Credential=t/x, SignedHeaders=host, Signature=00"


async def _post_until_closed(
    emulator: Any,
    session: aiohttp.ClientSession,
    ws: aiohttp.ClientWebSocketResponse,
    posts: int,
) -> tuple[list[int], aiohttp.WSMessage | None]:
    """Post ``posts`` frames 0.1 s apart (reading them); stop early at a close frame."""
    [connection_id] = emulator.connection_ids()
    url = f"{emulator.management_url}/@connections/{connection_id}"
    statuses: list[int] = []
    for _ in range(posts):
        async with session.post(url, data=b'{"n": 1}', headers={"Authorization": SIGV4}) as r:
            statuses.append(r.status)
        if r.status != 200:
            break
        message = await asyncio.wait_for(ws.receive(), 5)
        if message.type is not aiohttp.WSMsgType.TEXT:
            return statuses, message
        await asyncio.sleep(0.1)
    return statuses, None


async def test_posts_keep_a_connection_alive_by_default(make_emulator: EmulatorMaker) -> None:
    emulator = await make_emulator(limits=Limits(idle_timeout=0.5))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        statuses, closed = await _post_until_closed(emulator, session, ws, posts=12)
        assert closed is None
        assert statuses == [200] * 12  # > 1 s of posts only: never idle
        await ws.close()


async def test_inbound_only_closes_an_idle_client_despite_posts(
    make_emulator: EmulatorMaker,
) -> None:
    emulator = await make_emulator(limits=Limits(idle_timeout=0.5, idle_resets_on_outbound=False))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        statuses, closed = await _post_until_closed(emulator, session, ws, posts=200)
        if closed is None:  # the close raced the last post (410): read it
            closed = await asyncio.wait_for(ws.receive(), 5)
        assert (closed.type, closed.data, closed.extra) == (
            aiohttp.WSMsgType.CLOSE,
            1001,
            "Idle timeout",
        )
        assert statuses[0] == 200


@pytest.mark.parametrize(("flag", "expected"), [(True, False), (None, True)])
def test_cli_flag(flag: bool | None, expected: bool) -> None:
    config = build_config({"target": "http://127.0.0.1:1/ws/", "idle_inbound_only": flag})
    assert config.limits.idle_resets_on_outbound is expected
