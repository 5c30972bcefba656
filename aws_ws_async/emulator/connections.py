"""The emulator's connection table: pending during ``$connect``, then open, then gone.

A connection exists for ``@connections`` only while it is *open*: during ``$connect`` it is
pending (API Gateway answers 410 then, since the upgrade has not completed) and as soon as the
socket closes it is removed, before ``$disconnect`` is posted.
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from aws_ws_async.emulator.frames import encode_frames


class State(enum.Enum):
    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"


class Gone(Exception):
    """The connection does not exist (or not yet / no longer): ``@connections`` answers 410."""


class BufferFull(Exception):
    """Too many bytes are waiting for this client: ``@connections`` answers 429."""


@dataclass(eq=False)
class Connection:
    """One client socket as API Gateway tracks it."""

    connection_id: str
    source_ip: str
    user_agent: str
    query_string: str
    state: State = State.PENDING
    connected_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_active_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Monotonic times that drive the idle and age limits.
    opened_monotonic: float = field(default_factory=time.monotonic)
    active_monotonic: float = field(default_factory=time.monotonic)
    ws: web.WebSocketResponse | None = None
    transport: asyncio.Transport | None = None
    #: Set when the client broke a limit; the receive loop then drops messages.
    oversize: bool = False
    #: False when a test drops the socket so that ``$disconnect`` is lost.
    notify_disconnect: bool = True
    #: The task running a gateway-side close, if one was started.
    closer: asyncio.Task[None] | None = None
    messages_in: int = 0
    messages_out: int = 0

    def touch(self) -> None:
        """Record activity in either direction (resets the idle timeout)."""
        self.last_active_at = datetime.now(UTC)
        self.active_monotonic = time.monotonic()

    def send(
        self, data: bytes, *, max_frame_bytes: int, max_buffer_bytes: int, touch: bool = True
    ) -> None:
        """Write one message, split into frames of at most ``max_frame_bytes``.

        ``touch=False``: the message does not count as activity for the idle timeout
        (``Limits.idle_resets_on_outbound``).

        Frames go straight to the transport in one synchronous step, so no other writer can
        interleave inside a message. Text frames when the payload is UTF-8, else binary.
        """
        transport = self.transport
        if self.state is not State.OPEN or transport is None or transport.is_closing():
            raise Gone(self.connection_id)
        if transport.get_write_buffer_size() > max_buffer_bytes:
            raise BufferFull(self.connection_id)
        try:
            data.decode("utf-8")
            text = True
        except UnicodeDecodeError:
            text = False
        for frame in encode_frames(data, text=text, max_frame_bytes=max_frame_bytes):
            transport.write(frame)
        self.messages_out += 1
        if touch:
            self.touch()

    def info(self) -> dict[str, object]:
        """The ``GetConnection`` answer, with the wire names (SDKs show ``ConnectedAt`` etc.)."""
        return {
            "connectedAt": _iso(self.connected_at),
            "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent},
            "lastActiveAt": _iso(self.last_active_at),
        }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class ConnectionTable:
    """All connections by id; only open ones are visible to ``@connections``."""

    def __init__(self) -> None:
        self._by_id: dict[str, Connection] = {}

    def add(self, connection: Connection) -> None:
        self._by_id[connection.connection_id] = connection

    def remove(self, connection: Connection) -> None:
        connection.state = State.CLOSED
        if self._by_id.get(connection.connection_id) is connection:
            del self._by_id[connection.connection_id]

    def get_open(self, connection_id: str) -> Connection:
        connection = self._by_id.get(connection_id)
        if connection is None or connection.state is not State.OPEN:
            raise Gone(connection_id)
        return connection

    def get(self, connection_id: str) -> Connection | None:
        return self._by_id.get(connection_id)

    def open_ids(self) -> list[str]:
        return [c.connection_id for c in self._by_id.values() if c.state is State.OPEN]

    def all(self) -> list[Connection]:
        return list(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)
