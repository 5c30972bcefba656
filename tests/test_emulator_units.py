"""Pure parts of the emulator: configuration, route selection, frame sizes, identifiers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aws_ws_async.emulator import EmulatorConfig, Faults, Limits
from aws_ws_async.emulator.frames import (
    OP_BINARY,
    OP_CONTINUATION,
    OP_TEXT,
    FrameScanner,
    encode_frames,
)
from aws_ws_async.emulator.ids import new_connection_id, new_trace_id
from aws_ws_async.emulator.inbox import MessageInbox, MessageLoad
from aws_ws_async.emulator.routing import resolve_route, select_route_key
from aws_ws_async.validators import is_valid_connection_id

# --- configuration -----------------------------------------------------------------------------


def test_config_defaults_are_api_gateways_limits() -> None:
    config = EmulatorConfig("http://127.0.0.1:8000/ws")
    assert config.target_base_url == "http://127.0.0.1:8000/ws/"  # slash added
    assert config.integration_url("connect") == "http://127.0.0.1:8000/ws/connect"
    assert config.user_agent == "AmazonAPIGateway_emulator"
    assert config.limits.idle_timeout == 600
    assert config.limits.max_connection_age == 7200
    assert config.limits.max_message_bytes == 128 * 1024
    assert config.limits.max_frame_bytes == 32 * 1024
    assert config.route_selection_expression == "$request.body.action"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"target_base_url": "ftp://x/"}, "target_base_url"),
        ({"target_base_url": "not a url"}, "target_base_url"),
        ({"api_id": "Bad-Id"}, "api_id"),
        ({"stage": "a/b"}, "stage"),
        ({"route_selection_expression": " "}, "route_selection_expression"),
        ({"connection_id_header": "bad header"}, "connection_id_header"),
        ({"additional_routes": {"$connect": "http://x/"}}, "route key"),
        ({"additional_routes": {"chat": "nope"}}, "route 'chat'"),
    ],
)
def test_config_rejects_bad_values(fields: dict[str, object], message: str) -> None:
    fields = {"target_base_url": "http://127.0.0.1/ws/", **fields}
    with pytest.raises(ValueError, match=re.escape(message)):
        EmulatorConfig(**fields)  # type: ignore[arg-type]


def test_limits_and_faults_are_validated() -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        Limits(idle_timeout=0)
    with pytest.raises(ValueError, match="max_frame_bytes"):
        Limits(max_frame_bytes=0)
    with pytest.raises(ValueError, match="throttle_rate"):
        Faults(throttle_rate=1.5)
    with pytest.raises(ValueError, match="latency"):
        Faults(latency=-1)


@pytest.mark.parametrize(
    "fields",
    [
        {"max_in_flight_per_connection": 0},
        {"max_in_flight_per_connection": 2.5},
        {"max_in_flight_per_connection": True},
        {"max_queued_per_connection": -1},
        {"message_pool_size": 0},
        {"max_queued_bytes_per_connection": 0},
        {"lifecycle_pool_size": "10"},
    ],
)
def test_bounds_must_be_positive_ints(fields: dict[str, object]) -> None:
    [name] = fields
    with pytest.raises(ValueError, match=name):
        Limits(**fields)  # type: ignore[arg-type]


def test_bounds_defaults_and_a_queue_of_zero() -> None:
    limits = Limits(max_queued_per_connection=0)
    assert limits.max_queued_per_connection == 0
    assert Limits().max_in_flight_per_connection == 10
    assert Limits().max_queued_per_connection == 1000
    assert Limits().max_queued_bytes_per_connection == 4 * 1024 * 1024
    assert (Limits().message_pool_size, Limits().lifecycle_pool_size) == (100, 100)


@pytest.mark.parametrize("grace", [-1, float("nan"), "5", True])
def test_shutdown_grace_is_validated(grace: object) -> None:
    with pytest.raises(ValueError, match="shutdown_grace"):
        EmulatorConfig("http://127.0.0.1/ws/", shutdown_grace=grace)  # type: ignore[arg-type]
    assert EmulatorConfig("http://127.0.0.1/ws/").shutdown_grace == 5.0


def test_additional_routes_are_frozen() -> None:
    routes = {"chat": "http://127.0.0.1/chat"}
    config = EmulatorConfig("http://127.0.0.1/ws/", additional_routes=routes)
    routes["other"] = "http://127.0.0.1/other"
    assert dict(config.additional_routes) == {"chat": "http://127.0.0.1/chat"}
    with pytest.raises(TypeError):
        config.additional_routes["x"] = "y"  # type: ignore[index]


# --- route selection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "frame", "expected"),
    [
        ("$request.body.action", '{"action": "sendmessage"}', "sendmessage"),
        ("$request.body.action", '{"handler": "x"}', None),
        ("$request.body.action", '{"action": null}', None),
        ("$request.body.action", "not json", None),
        ("$request.body.action", '["action"]', None),
        ("$request.body.action", '"action"', None),
        ("$request.body.action", '{"action": 7}', "7"),
        ("$request.body.action", '{"action": true}', "true"),
        ("$request.body.action", '{"action": ["a", "b"]}', "[a, b]"),
        ("$request.body.a.b", '{"a": {"b": "deep"}}', "deep"),
        ("$request.body.a.b", '{"a": "flat"}', None),
        ("${request.body.service}/${request.body.action}", '{"service":"s","action":"a"}', "s/a"),
        ("${request.body.service}/${request.body.action}", '{"service": "s"}', None),
        ("$request.header.x", '{"x": "1"}', None),
    ],
)
def test_select_route_key(expression: str, frame: str, expected: str | None) -> None:
    assert select_route_key(expression, frame) == expected


def test_resolve_route_uses_additional_routes_or_default() -> None:
    routes = {"sendmessage": "http://backend/send"}
    assert resolve_route("$request.body.action", b'{"action":"sendmessage"}', routes) == (
        "sendmessage",
        "http://backend/send",
    )
    assert resolve_route("$request.body.action", b'{"action":"other"}', routes) == (
        "$default",
        None,
    )
    assert resolve_route("$request.body.action", b"\xff\xfe", routes) == ("$default", None)


# --- frames ------------------------------------------------------------------------------------


def client_frame(payload: bytes, opcode: int = OP_TEXT, fin: bool = True) -> bytes:
    """A masked client frame (mask key zero keeps the payload readable)."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        header = bytes((first, 0x80 | size))
    elif size < 65536:
        header = bytes((first, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + b"\0\0\0\0" + payload


@pytest.mark.parametrize(
    ("size", "oversize"), [(0, False), (125, False), (126, False), (32768, False), (32769, True)]
)
def test_scanner_flags_frames_over_the_limit(size: int, oversize: bool) -> None:
    scanner = FrameScanner(32768)
    assert scanner.feed(client_frame(b"x" * size)) is oversize


def test_scanner_handles_arbitrary_chunking_and_many_frames() -> None:
    stream = b"".join(
        [
            client_frame(b"a" * 10),
            client_frame(b"b" * 300, fin=False),
            client_frame(b"c" * 70000, opcode=OP_CONTINUATION),
            client_frame(b"", opcode=0x9),  # ping
        ]
    )
    scanner = FrameScanner(100_000)
    for i in range(0, len(stream), 7):
        assert scanner.feed(stream[i : i + 7]) is False
    assert scanner.frames == 4
    small = FrameScanner(32768)
    assert small.feed(stream[:50]) is False
    assert small.feed(stream[50:]) is True


@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=1200))
def test_encode_frames_round_trip(payload: bytes, limit: int) -> None:
    frames = encode_frames(payload, text=False, max_frame_bytes=limit)
    joined = b""
    for index, frame in enumerate(frames):
        fin = bool(frame[0] & 0x80)
        opcode = frame[0] & 0x0F
        assert opcode == (OP_BINARY if index == 0 else OP_CONTINUATION)
        assert fin is (index == len(frames) - 1)
        code = frame[1]
        assert not code & 0x80  # server frames are never masked
        offset = 2 + (2 if code == 126 else 8 if code == 127 else 0)
        body = frame[offset:]
        assert len(body) <= limit
        joined += body
    assert joined == payload


def test_encode_frames_keeps_small_messages_in_one_text_frame() -> None:
    [frame] = encode_frames(b"hello", text=True, max_frame_bytes=32768)
    assert frame == b"\x81\x05hello"


# --- identifiers -------------------------------------------------------------------------------


def test_connection_ids_look_like_api_gateways() -> None:
    ids = {new_connection_id() for _ in range(200)}
    assert len(ids) == 200
    for value in ids:
        assert len(value) == 16
        assert value.endswith("=")
        assert "/" not in value
        assert is_valid_connection_id(value)


def test_trace_id_shape() -> None:
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", new_trace_id())


# --- the per-connection message bound ---------------------------------------------------------


class Backend:
    """A post callable whose calls stay open until the test releases them, in order."""

    def __init__(self) -> None:
        self.started: list[bytes] = []
        self.gates: dict[bytes, asyncio.Event] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def post(self, frame: bytes) -> None:
        self.started.append(frame)
        gate = self.gates.setdefault(frame, asyncio.Event())
        await gate.wait()
        if frame == b"boom":
            raise RuntimeError("backend exploded")

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self.tasks.append(task)
        return task

    def release(self, frame: bytes) -> None:
        self.gates.setdefault(frame, asyncio.Event()).set()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_inbox_bounds_in_flight_and_queue_then_refuses() -> None:
    backend, load = Backend(), MessageLoad()
    inbox = MessageInbox(
        backend.post, backend.spawn, load, max_in_flight=2, max_queued=3, max_queued_bytes=99
    )
    offered = [inbox.offer(f"m{i}".encode()) for i in range(7)]
    assert offered == [True] * 5 + [False] * 2
    await settle()
    assert backend.started == [b"m0", b"m1"]
    assert len(backend.tasks) == 2  # one task per post in flight, not per frame
    assert (inbox.in_flight, inbox.queued) == (2, 3)
    assert (load.in_flight, load.queued, load.accepted, load.refused) == (2, 3, 5, 2)
    backend.release(b"m1")
    await settle()
    assert backend.started == [b"m0", b"m1", b"m2"]  # FIFO: the freed worker takes the oldest
    for frame in (b"m0", b"m2", b"m3", b"m4"):
        backend.release(frame)
    await asyncio.gather(*backend.tasks)
    assert backend.started == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert (load.in_flight, load.queued, load.completed) == (0, 0, 5)
    assert (load.peak_in_flight_per_connection, load.peak_queued_per_connection) == (2, 3)
    assert inbox.offer(b"again")  # room again once the backend caught up


async def test_inbox_survives_a_failing_post() -> None:
    backend, load = Backend(), MessageLoad()
    inbox = MessageInbox(
        backend.post, backend.spawn, load, max_in_flight=1, max_queued=1, max_queued_bytes=99
    )
    assert inbox.offer(b"boom")
    assert inbox.offer(b"next")
    backend.release(b"boom")
    backend.release(b"next")
    await asyncio.gather(*backend.tasks)
    assert backend.started == [b"boom", b"next"]
    assert (load.in_flight, load.queued, load.completed) == (0, 0, 2)


async def test_cancelled_inbox_discards_its_queue_and_counts_nothing_left() -> None:
    backend, load = Backend(), MessageLoad()
    inbox = MessageInbox(
        backend.post, backend.spawn, load, max_in_flight=1, max_queued=5, max_queued_bytes=99
    )
    for index in range(4):
        inbox.offer(f"m{index}".encode())
    await settle()
    [task] = backend.tasks
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (inbox.in_flight, inbox.queued) == (0, 0)
    assert (load.in_flight, load.queued, load.completed) == (0, 0, 0)


def test_inbox_refuses_a_senseless_bound() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        MessageInbox(
            Backend().post,
            Backend().spawn,
            MessageLoad(),
            max_in_flight=0,
            max_queued=1,
            max_queued_bytes=1,
        )


async def test_inbox_bounds_the_queued_bytes_too() -> None:
    backend, load = Backend(), MessageLoad()
    inbox = MessageInbox(
        backend.post, backend.spawn, load, max_in_flight=1, max_queued=9, max_queued_bytes=10
    )
    assert inbox.offer(b"x" * 50)  # in flight: not queued, so not counted against the bytes
    assert inbox.offer(b"a" * 6)
    assert not inbox.offer(b"b" * 5)  # 6 + 5 > 10
    assert inbox.offer(b"c" * 4)  # 6 + 4 == 10
    assert (load.queued, load.refused) == (2, 1)
    for frame in (b"x" * 50, b"a" * 6, b"c" * 4):
        backend.release(frame)
    await asyncio.gather(*backend.tasks)
    assert inbox.offer(b"d" * 10)  # the bytes were given back
