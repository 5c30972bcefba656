"""A fault-injecting ``@connections`` endpoint on loopback, for tests and benchmarks.

It answers like API Gateway's management API (POST 200, DELETE 204, GET connection info,
typed errors) and records every post per connection id. A :class:`FaultPlan` decides what goes
wrong: 410 for chosen ids, 429 bursts or an in-flight cap (an account throttle), 5xx, connection
resets, latency, hanging requests (timeouts) and bare errors without ``x-amzn-errortype``.

Usable from async tests (``async with FaultEndpoint(plan) as ep``), from sync code
(``ep.start_in_thread()``), or as a separate process
(``python -m aws_ws_async.testing.fault_endpoint --port 8123 --latency-ms 20``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from aws_ws_async.testing._cli import serve_until_interrupted
from aws_ws_async.testing.responses import error_response, ok_response

MARKER = "/@connections/"


@dataclass
class FaultPlan:
    """What the endpoint does wrong. Ids not mentioned anywhere simply succeed."""

    #: Seconds each request waits before answering.
    latency: float = 0.0
    #: Ids answered 410 (gone).
    gone: set[str] = field(default_factory=set)
    #: Ids answered 410 until this many seconds after their first request (a pending $connect).
    gone_for_seconds: dict[str, float] = field(default_factory=dict)
    #: The first ``throttle_first`` calls for each id in ``throttle_ids`` (all ids if None) get 429.
    throttle_first: int = 0
    throttle_ids: set[str] | None = None
    #: Requests beyond this many in flight get 429 (an account-wide throttle).
    max_in_flight: int | None = None
    #: A global token bucket: ``rate_limit`` requests per second with bursts of ``rate_burst``;
    #: requests finding it empty get 429 (API Gateway's account throttle).
    rate_limit: float | None = None
    rate_burst: int = 10
    #: The first ``server_error_first`` calls of each id in ``server_error_ids`` (all if None).
    server_error_first: int = 0
    server_error_ids: set[str] | None = None
    server_error_status: int = 503
    #: The first ``reset_first`` calls of each id in ``reset_ids`` (all if None) drop the socket.
    reset_first: int = 0
    reset_ids: set[str] | None = None
    #: Ids whose requests never get an answer in time (the client times out).
    hang_ids: set[str] = field(default_factory=set)
    hang_seconds: float = 30.0
    #: Ids answered with headers at once and then a body trickled one byte every
    #: ``trickle_interval`` seconds (``trickle_bytes`` in all): each read succeeds, the whole
    #: response never does in time. Only a total attempt deadline ends such a request.
    trickle_ids: set[str] = field(default_factory=set)
    trickle_interval: float = 0.2
    trickle_bytes: int = 200
    #: Fixed statuses for chosen ids (e.g. 403, 413, 400).
    status_for: dict[str, int] = field(default_factory=dict)
    #: Omit ``x-amzn-errortype`` and the typed body on every error.
    bare: bool = False


class FaultEndpoint:
    """An aiohttp server on 127.0.0.1 (a free port) speaking the ``@connections`` API."""

    def __init__(self, plan: FaultPlan | None = None, *, port: int = 0) -> None:
        self.plan = plan or FaultPlan()
        self.port = port
        #: Bodies received per connection id (successful posts only).
        self.received: dict[str, list[bytes]] = defaultdict(list)
        #: Every request per id, whatever the answer.
        self.calls: dict[str, int] = defaultdict(int)
        #: Ids closed with DELETE (successfully).
        self.deleted: list[str] = []
        #: The path before ``/@connections/`` of each id's last request (which API/stage).
        self.prefix_of: dict[str, str] = {}
        #: The raw (still percent-encoded) path of each id's last request.
        self.raw_path_of: dict[str, str] = {}
        #: The headers of each id's last request (to see which client path sent it).
        self.headers_of: dict[str, dict[str, str]] = {}
        self.in_flight = 0
        self.max_in_flight_seen = 0
        #: (time, in_flight) at each request start, to observe concurrency over time.
        self.in_flight_log: list[tuple[float, int]] = []
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._started = 0.0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._first_seen: dict[str, float] = {}
        self._tokens = float(self.plan.rate_burst)
        self._tokens_at = time.monotonic()

    # --- lifecycle ---

    @property
    def url(self) -> str:
        """Base URL without a stage path (use it as ``management_endpoint_url``)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
        await site.start()
        server = getattr(site, "_server", None)
        if self.port == 0 and server is not None and server.sockets:
            self.port = int(server.sockets[0].getsockname()[1])
        self._started = time.monotonic()
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FaultEndpoint:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self) -> str:
        """Serve from a daemon thread with its own loop (for sync tests)."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="fault-endpoint", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault endpoint did not start")
        return self.url

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def reset(self) -> None:
        """Forget what was received (the plan stays)."""
        self.received.clear()
        self.calls.clear()
        self.deleted.clear()
        self.prefix_of.clear()
        self.raw_path_of.clear()
        self._first_seen.clear()
        self.in_flight_log.clear()
        self.max_in_flight_seen = 0
        self.requests = 0

    # --- handler ---

    def _take_token(self) -> bool:
        plan = self.plan
        if plan.rate_limit is None:
            return True
        now = time.monotonic()
        self._tokens = min(
            float(plan.rate_burst), self._tokens + (now - self._tokens_at) * plan.rate_limit
        )
        self._tokens_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    @staticmethod
    def _matches(ids: set[str] | None, connection_id: str) -> bool:
        return ids is None or connection_id in ids

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        index = path.find(MARKER)
        if index < 0:
            return error_response(404, "Not found", bare=True)
        connection_id = unquote(path[index + len(MARKER) :])
        self.prefix_of[connection_id] = path[:index]
        self.raw_path_of[connection_id] = request.raw_path
        self.headers_of[connection_id] = dict(request.headers)
        self.requests += 1
        self.calls[connection_id] += 1
        call = self.calls[connection_id]
        self.in_flight += 1
        self.max_in_flight_seen = max(self.max_in_flight_seen, self.in_flight)
        self.in_flight_log.append((time.monotonic(), self.in_flight))
        try:
            body = await request.read()
            return await self._answer(request, connection_id, call, body)
        finally:
            self.in_flight -= 1

    async def _answer(
        self, request: web.Request, connection_id: str, call: int, body: bytes
    ) -> web.StreamResponse:
        plan = self.plan
        bare = plan.bare
        if plan.max_in_flight is not None and self.in_flight > plan.max_in_flight:
            if plan.latency:
                await asyncio.sleep(plan.latency)
            return error_response(429, bare=bare)
        if not self._take_token():
            return error_response(429, bare=bare)
        if plan.latency:
            await asyncio.sleep(plan.latency)
        if connection_id in plan.hang_ids:
            await asyncio.sleep(plan.hang_seconds)
        if connection_id in plan.trickle_ids:
            return await self._trickle(request)
        if call <= plan.reset_first and self._matches(plan.reset_ids, connection_id):
            transport = request.transport
            if transport is not None:
                with contextlib.suppress(Exception):
                    sock = transport.get_extra_info("socket")
                    if sock is not None:  # RST instead of FIN: a real "connection reset"
                        import socket
                        import struct

                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                transport.close()
            raise asyncio.CancelledError
        if connection_id in plan.status_for:
            return error_response(plan.status_for[connection_id], bare=bare)
        if connection_id in plan.gone:
            return error_response(410, bare=bare)
        gone_for = plan.gone_for_seconds.get(connection_id)
        first = self._first_seen.setdefault(connection_id, time.monotonic())
        if gone_for is not None and time.monotonic() - first < gone_for:
            return error_response(410, bare=bare)
        if call <= plan.throttle_first and self._matches(plan.throttle_ids, connection_id):
            return error_response(429, bare=bare)
        if call <= plan.server_error_first and self._matches(plan.server_error_ids, connection_id):
            return error_response(plan.server_error_status, bare=bare)
        if request.method == "POST":
            self.received[connection_id].append(body)
            return ok_response(200)
        if request.method == "DELETE":
            self.deleted.append(connection_id)
            return ok_response(204)
        if request.method == "GET":
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            info: dict[str, Any] = {
                "connectedAt": now,
                "lastActiveAt": now,
                "identity": {"sourceIp": "127.0.0.1", "userAgent": "fault-endpoint"},
            }
            return web.json_response(info)
        return error_response(400, "Unsupported method", bare=bare)

    async def _trickle(self, request: web.Request) -> web.StreamResponse:
        plan = self.plan
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = plan.trickle_bytes
        await response.prepare(request)
        for _ in range(plan.trickle_bytes):
            await asyncio.sleep(plan.trickle_interval)
            await response.write(b" ")
        await response.write_eof()
        return response


def main(argv: list[str] | None = None) -> None:
    """Serve a latency-only endpoint until interrupted (used by the benchmark)."""
    serve_until_interrupted(
        __doc__ or "",
        lambda latency, port: FaultEndpoint(FaultPlan(latency=latency), port=port),
        argv,
    )


if __name__ == "__main__":
    main()
