"""The HTTP_PROXY integration: what API Gateway posts to the backend for each event.

Per the AWS notes (section 4): ``$connect`` carries the client's query string and its handshake
headers (``Cookie``, ``Origin``, ``Sec-WebSocket-*``); messages carry the raw frame text as body
and no client headers; ``$disconnect`` is an empty best-effort post. Every request gets the
gateway's own headers (``X-Amzn-Apigateway-Api-Id``, ``X-Forwarded-*``, ``X-Amzn-Trace-Id``,
``User-Agent: AmazonAPIGateway_<apiId>``) and the mapped ones (connection id, gateway secret).
``Host`` is the backend's host, as the integration URI names it.

Two client pools: message posts share one (``Limits.message_pool_size``), ``$connect`` and
``$disconnect`` get their own (``Limits.lifecycle_pool_size``), so a backend slow to answer
messages can never hold a handshake or a ``$disconnect`` in the pool's queue. Every post has one
total deadline, ``Limits.integration_timeout`` (29 s, API Gateway's), covering the wait for a
pooled connection, connect, send, headers and body.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from aws_ws_async.emulator.config import EmulatorConfig
from aws_ws_async.emulator.connections import Connection
from aws_ws_async.emulator.ids import new_trace_id

logger = logging.getLogger("aws_ws_async.emulator.integration")

#: Handshake headers API Gateway forwards to the ``$connect`` integration.
FORWARDED_HANDSHAKE_HEADERS = (
    "Cookie",
    "Origin",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Protocol",
)


@dataclass(frozen=True)
class IntegrationCall:
    """One request made to the backend, kept for tests and the emulator's log."""

    event: str  # "CONNECT", "MESSAGE" or "DISCONNECT"
    route_key: str
    url: str
    connection_id: str
    status: int | None
    error: str | None
    elapsed: float


@dataclass(frozen=True)
class IntegrationResult:
    status: int | None  # None: the backend could not be reached or timed out
    headers: Mapping[str, str]
    body: bytes
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Integration:
    """Owns the HTTP client the emulator uses to call the backend."""

    def __init__(self, config: EmulatorConfig, history: int = 1000) -> None:
        self.config = config
        self.calls: deque[IntegrationCall] = deque(maxlen=history)
        self._messages: aiohttp.ClientSession | None = None
        self._lifecycle: aiohttp.ClientSession | None = None

    def _new_session(self, pool_size: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size),
            # Backend cookies must never leak from one client's $connect into another's.
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=self.config.limits.integration_timeout),
            skip_auto_headers=("Accept", "Accept-Encoding", "Content-Type"),
            auto_decompress=False,
        )

    async def start(self) -> None:
        limits = self.config.limits
        self._messages = self._new_session(limits.message_pool_size)
        self._lifecycle = self._new_session(limits.lifecycle_pool_size)

    async def close(self) -> None:
        for session in (self._messages, self._lifecycle):
            if session is not None:
                await session.close()
        self._messages = self._lifecycle = None

    def gateway_headers(self, connection: Connection) -> CIMultiDict[str]:
        """Headers API Gateway adds to every integration request of one connection."""
        config = self.config
        headers: CIMultiDict[str] = CIMultiDict()
        headers["User-Agent"] = config.user_agent
        headers["X-Amzn-Apigateway-Api-Id"] = config.api_id
        headers["X-Amzn-Trace-Id"] = new_trace_id()
        headers["X-Forwarded-For"] = connection.source_ip
        headers["X-Forwarded-Proto"] = config.forwarded_proto
        headers["X-Forwarded-Port"] = config.forwarded_port
        headers[config.connection_id_header] = connection.connection_id
        if config.gateway_secret:
            headers[config.gateway_secret_header] = config.gateway_secret
        return headers

    async def connect(
        self, connection: Connection, handshake_headers: Mapping[str, str]
    ) -> IntegrationResult:
        headers = self.gateway_headers(connection)
        for name in FORWARDED_HANDSHAKE_HEADERS:
            value = handshake_headers.get(name)
            if value is not None:
                headers[name] = value
        url = self.config.integration_url("connect")
        if connection.query_string:
            url = f"{url}?{connection.query_string}"
        return await self._post("CONNECT", "$connect", url, headers, b"", connection)

    async def message(
        self, connection: Connection, route_key: str, url: str, body: bytes
    ) -> IntegrationResult:
        headers = self.gateway_headers(connection)
        return await self._post("MESSAGE", route_key, url, headers, body, connection)

    async def disconnect(self, connection: Connection) -> IntegrationResult:
        headers = self.gateway_headers(connection)
        url = self.config.integration_url("disconnect")
        return await self._post("DISCONNECT", "$disconnect", url, headers, b"", connection)

    async def _post(
        self,
        event: str,
        route_key: str,
        url: str,
        headers: CIMultiDict[str],
        body: bytes,
        connection: Connection,
    ) -> IntegrationResult:
        session = self._messages if event == "MESSAGE" else self._lifecycle
        if session is None:
            raise RuntimeError("the integration client is not started")
        started = time.monotonic()
        try:
            # One total deadline, including the wait for a pooled connection and the body.
            async with asyncio.timeout(self.config.limits.integration_timeout):
                target = URL(url, encoded=True)
                async with session.post(target, data=body, headers=headers) as r:
                    payload = await r.read()
                    result = IntegrationResult(r.status, dict(r.headers), payload)
        except TimeoutError:
            result = IntegrationResult(None, {}, b"", "integration timed out")
        except (aiohttp.ClientError, OSError) as exc:
            result = IntegrationResult(None, {}, b"", f"{type(exc).__name__}: {exc}")
        elapsed = time.monotonic() - started
        self.calls.append(
            IntegrationCall(
                event,
                route_key,
                url,
                connection.connection_id,
                result.status,
                result.error,
                elapsed,
            )
        )
        level = logging.INFO if result.ok else logging.WARNING
        # A Django backend in DEBUG names its refusal in this header (aws_ws_async.views.reasons).
        reason = next(
            (v for k, v in result.headers.items() if k.lower() == "x-aws-ws-async-reason"), ""
        )
        logger.log(
            level,
            "%s %s -> %s%s (%.0f ms)",
            event,
            connection.connection_id,
            result.status if result.status is not None else result.error,
            f" {reason}" if reason else "",
            elapsed * 1000,
        )
        return result
