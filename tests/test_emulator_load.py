"""The emulator under load: lifecycle posts never queue behind messages, message posts per
connection are bounded, and ``stop()`` honours its grace period.

The backend is the real recording server on loopback, made slow or hanging through its
``on_message`` hook; the assertions read what the backend saw on the wire and the emulator's
own counters (``emulator.load``), never memory.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from aws_ws_async.emulator import Limits
from aws_ws_async.emulator.config import (
    MAX_IN_FLIGHT_PER_CONNECTION,
    MAX_QUEUED_PER_CONNECTION,
    SHUTDOWN_GRACE_SECONDS,
)
from tests.fixtures_emulator import EmulatorMaker, Recorded, RecordingBackend

pytestmark = pytest.mark.e2e


@pytest.fixture
async def release() -> AsyncIterator[asyncio.Event]:
    """Set at teardown, so hanging backend handlers end before the backend is cleaned up."""
    event = asyncio.Event()
    try:
        yield event
    finally:
        event.set()


def hang_until(event: asyncio.Event, backend: RecordingBackend) -> collections.Counter[str]:
    """Make every message post hang until ``event``; returns the live in-flight count per id."""
    live: collections.Counter[str] = collections.Counter()
    peaks: collections.Counter[str] = collections.Counter()

    async def on_message(record: Recorded) -> None:
        connection_id = record.headers["Connectionid"]
        live[connection_id] += 1
        peaks[connection_id] = max(peaks[connection_id], live[connection_id])
        try:
            await event.wait()
        finally:
            live[connection_id] -= 1

    backend.on_message = on_message
    return peaks


async def test_disconnect_is_not_queued_behind_message_posts_to_a_hanging_backend(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend, release: asyncio.Event
) -> None:
    """12 clients x 30 frames keep 120 message posts waiting for 100 backend connections."""
    hang_until(release, recording_backend)
    # A long integration timeout: the $disconnect cannot arrive by timing out its neighbours.
    emulator = await make_emulator(limits=Limits(integration_timeout=120))
    async with aiohttp.ClientSession() as session:
        clients = [await session.ws_connect(emulator.url) for _ in range(12)]
        for ws in clients:
            for index in range(30):
                await ws.send_str(json.dumps({"action": "work", "n": index}))
        await recording_backend.wait_for(
            lambda: len(recording_backend.by_path("/default")) >= 100, timeout=10
        )
        closing = time.monotonic()
        await clients[0].close()
        await recording_backend.wait_for(
            lambda: len(recording_backend.by_path("/disconnect")) == 1, timeout=10
        )
        assert time.monotonic() - closing < 10
        release.set()
        for ws in clients[1:]:
            await ws.close()


async def test_message_posts_of_one_connection_are_bounded(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend, release: asyncio.Event
) -> None:
    peaks = hang_until(release, recording_backend)
    emulator = await make_emulator()
    frames = 2000
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        for index in range(frames):
            await ws.send_str(json.dumps({"action": "work", "n": index}))
        bound = MAX_IN_FLIGHT_PER_CONNECTION + MAX_QUEUED_PER_CONNECTION
        await recording_backend.wait_for(
            lambda: len(recording_backend.by_path("/default")) >= MAX_IN_FLIGHT_PER_CONNECTION
        )
        await asyncio.sleep(0.3)  # room for posts beyond the bound to show up (they must not)
        # On the wire: never more than the bound of one connection at the backend at once.
        [connection_id] = peaks
        assert peaks[connection_id] == MAX_IN_FLIGHT_PER_CONNECTION
        async with asyncio.timeout(10):
            while emulator.load.accepted + emulator.load.refused < frames:
                await asyncio.sleep(0.02)
        await recording_backend.wait_for(
            lambda: len(recording_backend.by_path("/default")) == MAX_IN_FLIGHT_PER_CONNECTION
        )
        load = emulator.load
        assert load.in_flight == MAX_IN_FLIGHT_PER_CONNECTION
        assert load.queued == MAX_QUEUED_PER_CONNECTION
        assert load.peak_in_flight_per_connection == MAX_IN_FLIGHT_PER_CONNECTION
        assert load.peak_queued_per_connection == MAX_QUEUED_PER_CONNECTION
        assert (load.accepted, load.refused) == (bound, frames - bound)
        # The emulator holds a task per post in flight, not one per frame.
        assert len(emulator._tasks) <= MAX_IN_FLIGHT_PER_CONNECTION + 1
        assert peaks[connection_id] == MAX_IN_FLIGHT_PER_CONNECTION
        # Each refused frame is answered with an error frame; the socket stays usable.
        first = await asyncio.wait_for(ws.receive_json(), 5)
        assert first["message"] == "Too Many Requests"
        assert first["connectionId"] == connection_id
        release.set()
        await recording_backend.wait_for(
            lambda: len(recording_backend.by_path("/default")) == bound
        )
        async with asyncio.timeout(5):
            while emulator.load.completed < bound:
                await asyncio.sleep(0.02)
        assert (emulator.load.in_flight, emulator.load.queued) == (0, 0)
        assert all(task.done() for task in emulator._tasks)  # no idle worker waits
        await ws.send_str(json.dumps({"action": "after", "n": -1}))
        await recording_backend.wait_for(
            lambda: len(recording_backend.by_path("/default")) == bound + 1
        )
        await ws.close()


async def test_a_flooded_connection_closes_promptly_and_posts_its_disconnect(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend, release: asyncio.Event
) -> None:
    """The socket is read whatever the backend does, so the close frame is not held up."""
    hang_until(release, recording_backend)
    emulator = await make_emulator(limits=Limits(integration_timeout=120))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        for index in range(5000):
            await ws.send_str(json.dumps({"action": "work", "n": index}))
        closing = time.monotonic()
        await ws.close()
        await recording_backend.wait_for(
            lambda: len(recording_backend.by_path("/disconnect")) == 1, timeout=10
        )
        assert time.monotonic() - closing < 10
        assert ws.close_code == 1000


async def test_other_connections_are_not_starved_by_one_flood(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend, release: asyncio.Event
) -> None:
    gate = asyncio.Event()

    async def on_message(record: Recorded) -> None:
        if b"flood" in record.body:
            await release.wait()
        else:
            gate.set()

    recording_backend.on_message = on_message
    emulator = await make_emulator()
    async with aiohttp.ClientSession() as session:
        flooder = await session.ws_connect(emulator.url)
        other = await session.ws_connect(emulator.url)
        for index in range(3000):
            await flooder.send_str(json.dumps({"action": "flood", "n": index}))
        await other.send_str(json.dumps({"action": "hello"}))
        await asyncio.wait_for(gate.wait(), 10)
        release.set()
        await flooder.close()
        await other.close()


async def test_stop_lets_in_flight_posts_finish_within_the_grace_then_cancels_the_rest(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend, release: asyncio.Event
) -> None:
    finished: list[bytes] = []

    async def on_message(record: Recorded) -> None:
        if b"slow" in record.body:
            await asyncio.sleep(0.5)
            finished.append(record.body)
        else:
            await release.wait()  # never answers before the grace period is over

    recording_backend.on_message = on_message
    emulator = await make_emulator(limits=Limits(integration_timeout=120))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        await ws.send_str(json.dumps({"action": "slow"}))
        await ws.send_str(json.dumps({"action": "hang"}))
        await recording_backend.wait_for(lambda: len(recording_backend.by_path("/default")) == 2)
        started = time.monotonic()
        await emulator.stop(grace=2.0)
        elapsed = time.monotonic() - started
        message = await asyncio.wait_for(ws.receive(), 5)
    assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1001)
    assert 2.0 <= elapsed < 4.0, elapsed
    assert finished == [b'{"action": "slow"}']
    messages = [c for c in emulator.calls if c.event == "MESSAGE"]
    assert [c.status for c in messages] == [200]  # the hanging one was cancelled, not answered
    assert len(recording_backend.by_path("/disconnect")) == 1
    assert (emulator.load.in_flight, emulator.load.queued) == (0, 0)


async def test_stop_returns_after_the_grace_even_if_the_backend_hangs_every_post(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend, release: asyncio.Event
) -> None:
    hang_until(release, recording_backend)
    emulator = await make_emulator(limits=Limits(integration_timeout=120))

    async def hang(record: Recorded) -> None:
        await release.wait()

    recording_backend.on_disconnect = hang
    async with aiohttp.ClientSession() as session:
        clients = [await session.ws_connect(emulator.url) for _ in range(3)]
        for ws in clients:
            await ws.send_str("work")
        started = time.monotonic()
        await emulator.stop(grace=1.0)
        elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 3.0, elapsed
    assert emulator.handlers == set()


async def test_stop_with_the_default_grace_returns_even_if_the_backend_hangs(
    make_emulator: EmulatorMaker, recording_backend: RecordingBackend, release: asyncio.Event
) -> None:
    """Before, the handlers' hanging $disconnect posts held aiohttp's cleanup for up to 60 s."""
    hang_until(release, recording_backend)

    async def hang(record: Recorded) -> None:
        await release.wait()

    recording_backend.on_disconnect = hang
    emulator = await make_emulator(limits=Limits(integration_timeout=120))
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        await ws.send_str("work")
        await recording_backend.wait_for(lambda: bool(recording_backend.by_path("/default")))
        started = time.monotonic()
        await emulator.stop()
        elapsed = time.monotonic() - started
    assert elapsed < SHUTDOWN_GRACE_SECONDS + 2, elapsed


async def test_stop_refuses_a_negative_grace(make_emulator: EmulatorMaker) -> None:
    emulator = await make_emulator()
    with pytest.raises(ValueError, match="grace"):
        await emulator.stop(grace=-1)
    await emulator.stop(grace=0)


async def test_a_connections_request_in_progress_finishes_within_the_grace(
    make_emulator: EmulatorMaker,
) -> None:
    """aiohttp's own cleanup would cut it after a fraction of a second; stop() waits for it."""
    from aws_ws_async.emulator import Faults

    emulator = await make_emulator(faults=Faults(latency=0.8))
    headers = {"Authorization": "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=00"}
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(emulator.url)
        [connection_id] = emulator.connection_ids()
        url = f"{emulator.management_url}/@connections/{connection_id}"
        request = asyncio.create_task(session.post(url, data=b"hi", headers=headers))
        await asyncio.sleep(0.2)  # the request is inside its injected latency now
        stops = [asyncio.create_task(emulator.stop(grace=3.0)) for _ in range(2)]
        response = await asyncio.wait_for(request, 5)
        await asyncio.gather(*stops)  # a second stop() waits for the first one
        # The socket was closed meanwhile, so the late post finds the connection gone.
        assert response.status == 410
        assert response.headers["x-amzn-errortype"] == "GoneException"
        response.release()
        await ws.close()


async def test_a_backend_trickling_its_body_is_cut_at_the_total_deadline(
    make_emulator: EmulatorMaker,
) -> None:
    """Headers at once, then one byte every 0.1 s: each read is quick, the whole post is not."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        try:
            for _ in range(1000):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.1)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        emulator = await make_emulator(
            target_base_url=f"http://127.0.0.1:{port}/ws/",
            limits=Limits(integration_timeout=1.0),
        )
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(emulator.url)
        assert info.value.status == 504
        assert time.monotonic() - started < 5
        [call] = emulator.calls
        assert (call.event, call.error) == ("CONNECT", "integration timed out")
    finally:
        server.close()
