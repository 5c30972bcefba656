"""The client side: WebSocket handshakes, ``$connect``, message routing, limits, ``$disconnect``.

The upgrade is completed only after the backend answered ``$connect`` with 2xx, so until then
the connection is pending and ``@connections`` answers 410, as API Gateway does. A refusal
returns the backend's status to the client (API Gateway relays neither headers nor body, except
a chosen ``Sec-WebSocket-Protocol``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, WSMsgType, web

from aws_ws_async.emulator.connections import BufferFull, Connection, Gone, State
from aws_ws_async.emulator.frames import FrameGuard
from aws_ws_async.emulator.ids import new_connection_id, new_request_id
from aws_ws_async.emulator.inbox import MessageInbox
from aws_ws_async.emulator.routing import resolve_route

if TYPE_CHECKING:
    from aws_ws_async.emulator.server import GatewayEmulator

logger = logging.getLogger("aws_ws_async.emulator.websocket")

#: Close codes the emulator uses (API Gateway's, where known; see docs/emulator.md).
CLOSE_GOING_AWAY = int(WSCloseCode.GOING_AWAY)  # idle timeout, max age, shutdown
CLOSE_UNSUPPORTED = int(WSCloseCode.UNSUPPORTED_DATA)  # binary frame from the client
CLOSE_TOO_BIG = int(WSCloseCode.MESSAGE_TOO_BIG)  # frame > 32 KB or message > 128 KB
CLOSE_NORMAL = int(WSCloseCode.OK)  # DeleteConnection
#: How long a gateway-side close waits for the client's close frame.
CLOSE_HANDSHAKE_SECONDS = 3.0


class WebSocketSide:
    """Serves ``ws://host:port/<stage>`` for one emulator."""

    def __init__(self, emulator: GatewayEmulator) -> None:
        self.emulator = emulator
        self.config = emulator.config

    async def handle(self, request: web.Request) -> web.StreamResponse:
        config = self.config
        if request.match_info["stage"] != config.stage:
            return web.json_response({"message": "Forbidden"}, status=403)
        probe = web.WebSocketResponse()
        if not probe.can_prepare(request).ok:
            return web.Response(status=426, text="Upgrade Required")
        if self.emulator.stopping:
            return web.Response(status=503)
        connection = Connection(
            connection_id=new_connection_id(),
            source_ip=request.remote or "",
            user_agent=request.headers.get("User-Agent", ""),
            query_string=request.rel_url.raw_query_string,
        )
        self.emulator.table.add(connection)
        # stop() waits for this handler (its $disconnect) within the grace period.
        with self.emulator.track_handler():
            try:
                return await self._serve(request, connection)
            finally:
                self.emulator.table.remove(connection)

    async def _serve(self, request: web.Request, connection: Connection) -> web.StreamResponse:
        emulator = self.emulator
        limits = self.config.limits
        result = await emulator.integration.connect(connection, request.headers)
        if result.status is None:
            status = 504 if result.error == "integration timed out" else 502
            return web.Response(status=status)
        if not result.ok:
            return web.Response(status=result.status)
        if emulator.stopping:
            await self._disconnect(connection)
            return web.Response(status=503)
        chosen = result.headers.get("Sec-WebSocket-Protocol")
        ws = web.WebSocketResponse(
            protocols=(chosen,) if chosen else (),
            compress=False,  # API Gateway negotiates no permessage-deflate
            max_msg_size=limits.max_message_bytes,
            autoping=True,
            timeout=CLOSE_HANDSHAKE_SECONDS,
        )
        transport = request.transport
        if transport is None:  # the client left during $connect
            await self._disconnect(connection)
            return ws

        def on_oversize() -> None:
            connection.oversize = True
            self.request_close(connection, CLOSE_TOO_BIG, "Message too long")

        guard = FrameGuard(request.protocol, limits.max_frame_bytes, on_oversize)
        transport.set_protocol(guard)
        try:
            await ws.prepare(request)
        except (ConnectionError, RuntimeError):
            await self._disconnect(connection)
            return ws
        connection.ws = ws
        connection.transport = transport
        connection.connected_at = datetime.now(UTC)
        connection.opened_monotonic = time.monotonic()
        connection.touch()
        connection.state = State.OPEN
        watchdog = asyncio.create_task(self._watch(connection))
        try:
            await self._receive(ws, connection)
        finally:
            watchdog.cancel()
            emulator.table.remove(connection)
            closer = connection.closer
            if closer is not None:
                # $disconnect comes after the socket is closed, as in API Gateway.
                await asyncio.wait([closer], timeout=CLOSE_HANDSHAKE_SECONDS + 1)
            await self._disconnect(connection)
        return ws

    async def _receive(self, ws: web.WebSocketResponse, connection: Connection) -> None:
        limits = self.config.limits

        async def post(frame: bytes) -> None:
            await self._route(connection, frame)

        inbox = MessageInbox(
            post,
            self.emulator.spawn,
            self.emulator.load,
            max_in_flight=limits.max_in_flight_per_connection,
            max_queued=limits.max_queued_per_connection,
            max_queued_bytes=limits.max_queued_bytes_per_connection,
        )
        refused = 0
        async for message in ws:
            if connection.oversize:
                break
            if message.type is WSMsgType.TEXT:
                connection.touch()
                connection.messages_in += 1
                if not inbox.offer(message.data.encode("utf-8")):
                    # The connection's bound is full: refuse this frame, keep reading.
                    if not refused:
                        logger.warning(
                            "refusing messages of %s: %d posts in flight, %d queued",
                            connection.connection_id,
                            inbox.in_flight,
                            inbox.queued,
                        )
                    refused += 1
                    self._reply_error(connection, "Too Many Requests")
                # Frames already buffered come without a pause: let the posts (and the other
                # connections) run between them, so a burst is not refused for our own delay.
                await asyncio.sleep(0)
            elif message.type is WSMsgType.BINARY:
                # AWS: binary frames are not supported in incoming payloads; close 1003.
                self.request_close(connection, CLOSE_UNSUPPORTED, "Binary frames not supported")
                break
            elif message.type is WSMsgType.ERROR:
                break

    async def _route(self, connection: Connection, frame: bytes) -> None:
        """Post one message to its route's integration; relay errors as API Gateway does."""
        config = self.config
        route_key, url = resolve_route(
            config.route_selection_expression, frame, config.additional_routes
        )
        if url is None:
            if not config.default_route:
                self._reply_error(connection, "Forbidden")
                return
            url = config.integration_url("default")
        result = await self.emulator.integration.message(connection, route_key, url, frame)
        if result.status is None:
            self._reply_error(connection, "Internal server error")
        elif config.route_responses and result.ok and result.body:
            self._reply(connection, result.body)

    def _reply_error(self, connection: Connection, message: str) -> None:
        body = {
            "message": message,
            "connectionId": connection.connection_id,
            "requestId": new_request_id(),
        }
        self._reply(connection, json.dumps(body).encode())

    def _reply(self, connection: Connection, data: bytes) -> None:
        limits = self.config.limits
        try:
            connection.send(
                data,
                max_frame_bytes=limits.max_frame_bytes,
                max_buffer_bytes=limits.max_client_buffer_bytes,
            )
        except (Gone, BufferFull):
            logger.debug("could not reply to %s", connection.connection_id)

    async def _watch(self, connection: Connection) -> None:
        """Close the connection at the idle timeout or the maximum age, whichever comes first."""
        limits = self.config.limits
        while True:
            now = time.monotonic()
            idle_deadline = connection.active_monotonic + limits.idle_timeout
            age_deadline = connection.opened_monotonic + limits.max_connection_age
            deadline = min(idle_deadline, age_deadline)
            if now >= deadline:
                reason = "Going away" if now >= age_deadline else "Idle timeout"
                logger.info("closing %s: %s", connection.connection_id, reason.lower())
                self.request_close(connection, CLOSE_GOING_AWAY, reason)
                return
            await asyncio.sleep(deadline - now)

    def request_close(
        self, connection: Connection, code: int, reason: str = ""
    ) -> asyncio.Task[None]:
        """Close one socket from the gateway side (limits, DeleteConnection, shutdown).

        The connection leaves the table at once (``@connections`` answers 410 from now on); the
        close handshake runs in a task the connection's handler waits for.
        """
        self.emulator.table.remove(connection)
        if connection.closer is None:
            connection.closer = self.emulator.spawn(self._close(connection, code, reason))
        return connection.closer

    async def _close(self, connection: Connection, code: int, reason: str) -> None:
        ws = connection.ws
        if ws is None or ws.closed:
            return
        try:
            await ws.close(code=code, message=reason.encode())
        except (ConnectionError, RuntimeError):
            logger.debug("closing %s failed", connection.connection_id, exc_info=True)

    async def _disconnect(self, connection: Connection) -> None:
        """``$disconnect``: best-effort, after the socket is gone; may be lost on purpose."""
        if not connection.notify_disconnect:
            return
        if self.emulator.lose_disconnect():
            logger.info("losing $disconnect of %s (fault injection)", connection.connection_id)
            return
        await self.emulator.integration.disconnect(connection)
