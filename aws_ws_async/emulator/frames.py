"""WebSocket frame sizes: API Gateway's 32 KB frame limit, inbound and outbound.

aiohttp reassembles fragmented messages and only enforces a *message* size, but API Gateway
also closes a connection (code 1009) when a single frame exceeds 32 KB. Browsers never fragment,
so in practice a browser message over 32 KB is refused by AWS; the emulator must do the same.
:class:`FrameScanner` reads only frame headers from the raw byte stream (payloads are skipped,
never copied) and :class:`FrameGuard` sits between the transport and aiohttp's protocol to feed
it. Outbound, :func:`encode_frames` splits a message into frames of at most 32 KB, as API
Gateway does for ``@connections`` posts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
_DATA_OPCODES = frozenset({OP_CONTINUATION, OP_TEXT, OP_BINARY})


class FrameScanner:
    """Incremental parser of client frame headers that reports frames over ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._header = bytearray()
        self._skip = 0
        self.frames = 0
        self.oversize = False

    def _header_length(self) -> int | None:
        """Total header length once the first two bytes are known."""
        if len(self._header) < 2:
            return None
        code = self._header[1] & 0x7F
        extra = 2 if code == 126 else 8 if code == 127 else 0
        mask = 4 if self._header[1] & 0x80 else 0
        return 2 + extra + mask

    def _payload_length(self) -> int:
        code = self._header[1] & 0x7F
        if code == 126:
            return int.from_bytes(self._header[2:4], "big")
        if code == 127:
            return int.from_bytes(self._header[2:10], "big")
        return code

    def feed(self, data: bytes) -> bool:
        """Consume raw bytes; True as soon as a data frame larger than the limit starts."""
        pos = 0
        size = len(data)
        while pos < size and not self.oversize:
            if self._skip:
                step = min(self._skip, size - pos)
                self._skip -= step
                pos += step
                continue
            self._header.append(data[pos])
            pos += 1
            need = self._header_length()
            if need is None or len(self._header) < need:
                continue
            opcode = self._header[0] & 0x0F
            length = self._payload_length()
            self._header.clear()
            self.frames += 1
            if opcode in _DATA_OPCODES and length > self.limit:
                self.oversize = True
                return True
            self._skip = length
        return self.oversize


class FrameGuard(asyncio.Protocol):
    """Transport-side wrapper of aiohttp's protocol that watches client frame sizes.

    Installed with the public ``transport.set_protocol()`` before the 101 answer is sent, so
    every byte it sees afterwards is WebSocket framing. All events are forwarded unchanged;
    ``on_oversize`` is called once when the first oversize frame starts.
    """

    def __init__(self, inner: Any, limit: int, on_oversize: Callable[[], None]) -> None:
        self._inner = inner
        self._scanner = FrameScanner(limit)
        self._on_oversize = on_oversize
        self._reported = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # pragma: no cover
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._reported and self._scanner.feed(data):
            self._reported = True
            self._on_oversize()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def encode_frame(payload: bytes, opcode: int, fin: bool) -> bytes:
    """One unmasked (server to client) frame."""
    first = (0x80 if fin else 0x00) | opcode
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size < 1 << 16:
        header = bytes((first, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, 127)) + size.to_bytes(8, "big")
    return header + payload


def encode_frames(payload: bytes, *, text: bool, max_frame_bytes: int) -> list[bytes]:
    """A message as frames of at most ``max_frame_bytes`` payload bytes (one if it fits).

    Text fragments may split a UTF-8 sequence; RFC 6455 only requires the whole message to be
    valid UTF-8, and browsers reassemble before decoding.
    """
    opcode = OP_TEXT if text else OP_BINARY
    if len(payload) <= max_frame_bytes:
        return [encode_frame(payload, opcode, True)]
    chunks = [payload[i : i + max_frame_bytes] for i in range(0, len(payload), max_frame_bytes)]
    last = len(chunks) - 1
    return [
        encode_frame(chunk, opcode if i == 0 else OP_CONTINUATION, i == last)
        for i, chunk in enumerate(chunks)
    ]
