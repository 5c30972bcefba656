"""The ``@connections`` API: PostToConnection, GetConnection, DeleteConnection.

Answers follow the AWS notes (section 2): POST 200, GET 200 with ``ConnectedAt`` /
``LastActiveAt`` / ``Identity``, DELETE 204; 410 ``GoneException`` for a connection that does
not exist *or is still in ``$connect``*; 413 ``PayloadTooLargeException`` over 128 KB; 403
``ForbiddenException`` without a SigV4 ``Authorization`` header (the signature is not checked);
429 ``LimitExceededException`` when fault injection says so or the client's buffer is full.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import TYPE_CHECKING

from aiohttp import web

from aws_ws_async.emulator.connections import BufferFull, Gone
from aws_ws_async.emulator.errors import (
    FORBIDDEN,
    GONE,
    LIMIT_EXCEEDED,
    PAYLOAD_TOO_LARGE,
    aws_error,
)
from aws_ws_async.emulator.ids import new_request_id
from aws_ws_async.emulator.websocket import CLOSE_NORMAL

if TYPE_CHECKING:
    from aws_ws_async.emulator.server import GatewayEmulator

logger = logging.getLogger("aws_ws_async.emulator.management")

#: What a SigV4 ``Authorization`` header looks like (we check the shape, not the signature).
SIGV4_RE = re.compile(
    r"\AAWS4-HMAC-SHA256 Credential=\S+, ?SignedHeaders=\S+, ?Signature=[0-9a-f]+\Z"
)


class ManagementSide:
    """Serves ``/{stage}/@connections/{id}`` (and ``/@connections/{id}``) for one emulator."""

    def __init__(self, emulator: GatewayEmulator) -> None:
        self.emulator = emulator
        self.config = emulator.config

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # stop() lets a request in progress (e.g. with injected latency) finish in its grace.
        with self.emulator.track_handler():
            return await self._handle(request)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        emulator = self.emulator
        stage = request.match_info.get("stage")
        if stage is not None and stage != self.config.stage:
            return aws_error(FORBIDDEN)
        if not SIGV4_RE.fullmatch(request.headers.get("Authorization", "").strip()):
            emulator.stats["forbidden"] += 1
            return aws_error(FORBIDDEN)
        faults = self.config.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if emulator.should_throttle():
            emulator.stats["throttled"] += 1
            return aws_error(LIMIT_EXCEEDED)
        connection_id = request.match_info["connection_id"]
        if request.method == "POST":
            return await self._post(request, connection_id)
        if request.method == "GET":
            return self._get(connection_id)
        return self._delete(connection_id)

    async def _post(self, request: web.Request, connection_id: str) -> web.StreamResponse:
        emulator = self.emulator
        limits = self.config.limits
        declared = request.content_length
        if declared is not None and declared > limits.max_message_bytes:
            emulator.stats["too_large"] += 1
            return aws_error(PAYLOAD_TOO_LARGE)
        chunks: list[bytes] = []
        total = 0
        while chunk := await request.content.read(65536):
            total += len(chunk)
            if total > limits.max_message_bytes:
                emulator.stats["too_large"] += 1
                return aws_error(PAYLOAD_TOO_LARGE)
            chunks.append(chunk)
        data = b"".join(chunks)
        try:
            connection = emulator.table.get_open(connection_id)
            connection.send(
                data,
                max_frame_bytes=limits.max_frame_bytes,
                max_buffer_bytes=limits.max_client_buffer_bytes,
                touch=limits.idle_resets_on_outbound,
            )
        except Gone:
            emulator.stats["gone"] += 1
            return aws_error(GONE)
        except BufferFull:
            emulator.stats["throttled"] += 1
            return aws_error(LIMIT_EXCEEDED)
        emulator.stats["posted"] += 1
        return web.Response(status=200, headers={"x-amzn-RequestId": new_request_id()})

    def _get(self, connection_id: str) -> web.StreamResponse:
        try:
            connection = self.emulator.table.get_open(connection_id)
        except Gone:
            self.emulator.stats["gone"] += 1
            return aws_error(GONE)
        return web.Response(
            body=json.dumps(connection.info()).encode(),
            content_type="application/json",
            headers={"x-amzn-RequestId": new_request_id()},
        )

    def _delete(self, connection_id: str) -> web.StreamResponse:
        try:
            connection = self.emulator.table.get_open(connection_id)
        except Gone:
            self.emulator.stats["gone"] += 1
            return aws_error(GONE)
        self.emulator.websocket.request_close(connection, CLOSE_NORMAL, "")
        self.emulator.stats["deleted"] += 1
        return web.Response(status=204, headers={"x-amzn-RequestId": new_request_id()})
