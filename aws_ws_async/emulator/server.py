"""The emulator itself: one aiohttp application serving both sides on one port.

:class:`GatewayEmulator` runs on the caller's event loop (``async with``); :class:`EmulatorThread`
runs one in a background thread with its own loop, for sync code (pytest fixtures, a Django test
server in another thread, the demo launcher).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from aws_ws_async.emulator.config import SHUTDOWN_GRACE_SECONDS as SHUTDOWN_GRACE_SECONDS
from aws_ws_async.emulator.config import EmulatorConfig
from aws_ws_async.emulator.connections import ConnectionTable
from aws_ws_async.emulator.inbox import MessageLoad
from aws_ws_async.emulator.integration import Integration, IntegrationCall
from aws_ws_async.emulator.management import ManagementSide
from aws_ws_async.emulator.websocket import CLOSE_GOING_AWAY, WebSocketSide

logger = logging.getLogger("aws_ws_async.emulator.server")

T = TypeVar("T")

#: What aiohttp may still spend per step on a handler left after the grace period.
_CLEANUP_SECONDS = 0.25


class GatewayEmulator:
    """A local stand-in for one API Gateway WebSocket API stage in front of an HTTP backend."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.table = ConnectionTable()
        self.integration = Integration(config)
        self.websocket = WebSocketSide(self)
        self.management = ManagementSide(self)
        #: Counters of ``@connections`` outcomes: posted, gone, throttled, too_large, ...
        self.stats: Counter[str] = Counter()
        #: Counters of message posts to the backend (in flight, queued, refused, peaks).
        self.load = MessageLoad()
        #: The request handlers running now (a WebSocket handler posts its ``$disconnect`` at
        #: the end); ``stop()`` waits for them within its grace period.
        self.handlers: set[asyncio.Task[Any]] = set()
        self._stopped: asyncio.Future[None] | None = None
        self.stopping = False
        self.host = "127.0.0.1"
        self.port = 0
        self._random = random.Random(config.faults.seed)
        self._forced_throttles = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None

    # --- lifecycle -----------------------------------------------------------------------
    def make_app(self) -> web.Application:
        app = web.Application()
        manage = self.management.handle
        for prefix in ("/{stage}/@connections/", "/@connections/"):
            path = prefix + "{connection_id:.+}"
            app.router.add_route("POST", path, manage)
            app.router.add_route("GET", path, manage)
            app.router.add_route("DELETE", path, manage)
        app.router.add_get("/{stage}", self.websocket.handle)
        app.router.add_get("/{stage}/", self.websocket.handle)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind and serve; ``port=0`` picks a free port (read it from :attr:`port`)."""
        self.stopping = False
        await self.integration.start()
        self._runner = web.AppRunner(
            self.make_app(),
            access_log=None,
            handle_signals=False,
            # stop() has already waited its grace period when aiohttp's cleanup runs.
            shutdown_timeout=_CLEANUP_SECONDS,
        )
        await self._runner.setup()
        # Bind the socket ourselves so that port 0 tells us which port we got.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            await self._runner.cleanup()
            await self.integration.close()
            self._runner = None
            raise
        await web.SockSite(self._runner, sock).start()
        self.host = host
        self.port = int(sock.getsockname()[1])
        logger.info(
            "API Gateway emulator on %s (backend %s)", self.url, self.config.target_base_url
        )

    async def stop(self, grace: float | None = None) -> None:
        """Close every socket (1001), post their ``$disconnect``, then stop serving.

        Within ``grace`` seconds (default ``config.shutdown_grace``, 5 s) in all, close
        handshakes, ``$disconnect`` posts and message posts in flight may finish; whatever is
        left then is cancelled, so ``stop()`` returns shortly after the grace period whatever
        the backend does.
        """
        grace = self.config.shutdown_grace if grace is None else float(grace)
        if not grace >= 0:
            raise ValueError(f"grace must be >= 0 seconds, not {grace!r}")
        if self._stopped is not None:  # a stop is under way: wait for that one
            await asyncio.shield(self._stopped)
            return
        if self._runner is None:
            return
        loop = asyncio.get_running_loop()
        self._stopped = loop.create_future()
        try:
            await self._stop(loop, grace)
        finally:
            self._stopped.set_result(None)
            self._stopped = None

    async def _stop(self, loop: asyncio.AbstractEventLoop, grace: float) -> None:
        assert self._runner is not None
        deadline = loop.time() + grace
        self.stopping = True
        for connection in self.table.all():
            self.websocket.request_close(connection, CLOSE_GOING_AWAY, "Going away")
        current = asyncio.current_task()
        while True:
            pending = [
                t for t in (*self._tasks, *self.handlers) if not t.done() and t is not current
            ]
            remaining = deadline - loop.time()
            if not pending or remaining <= 0:
                break
            await asyncio.wait(pending, timeout=remaining)
        leftovers = [t for t in self._tasks if not t.done()]
        if leftovers or any(not t.done() for t in self.handlers):
            logger.warning(
                "grace period of %.1f s over: cancelling %d posts and %d handlers",
                grace,
                len(leftovers),
                sum(1 for t in self.handlers if not t.done()),
            )
        for task in leftovers:
            task.cancel()
        # aiohttp cancels the handlers still running (after _CLEANUP_SECONDS).
        await self._runner.cleanup()
        self._runner = None
        if leftovers:
            await asyncio.wait(leftovers, timeout=_CLEANUP_SECONDS)
        await self.integration.close()

    async def __aenter__(self) -> GatewayEmulator:
        if self._runner is None:
            await self.start(self.host, self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def serve_forever(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve until cancelled (Ctrl-C under ``asyncio.run``), then stop cleanly."""
        await self.start(host, port)
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(self.stop())

    # --- addresses -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to (``ws://host:port/<stage>``)."""
        return f"ws://{self.host}:{self.port}/{self.config.stage}"

    @property
    def management_url(self) -> str:
        """The ``@connections`` endpoint, as ``management_endpoint_url`` wants it."""
        return f"http://{self.host}:{self.port}/{self.config.stage}"

    # --- helpers shared by both sides ------------------------------------------------------
    @contextlib.contextmanager
    def track_handler(self) -> Iterator[None]:
        """Count the running request handler among those ``stop()`` waits for."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self.handlers.add(task)
        try:
            yield
        finally:
            self.handlers.discard(task)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run a coroutine as a task the emulator waits for (or cancels) when it stops."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def should_throttle(self) -> bool:
        if self._forced_throttles > 0:
            self._forced_throttles -= 1
            return True
        rate = self.config.faults.throttle_rate
        return rate > 0 and self._random.random() < rate

    def lose_disconnect(self) -> bool:
        rate = self.config.faults.disconnect_loss_rate
        return rate > 0 and self._random.random() < rate

    # --- test controls ---------------------------------------------------------------------
    def throttle_next(self, count: int) -> None:
        """Answer the next ``count`` ``@connections`` requests with 429, whatever the rate."""
        self._forced_throttles = count

    def connection_ids(self) -> list[str]:
        """Ids of the open connections."""
        return self.table.open_ids()

    @property
    def calls(self) -> list[IntegrationCall]:
        """The most recent integration requests made to the backend, oldest first."""
        return list(self.integration.calls)

    async def drop(self, connection_id: str, *, notify_backend: bool = False) -> bool:
        """Cut a connection without a close handshake, as a vanished client or network does.

        With ``notify_backend=False`` the ``$disconnect`` is lost, leaving a stale row behind
        exactly as a lost ``$disconnect`` does in AWS. Returns False for an unknown id.
        """
        connection = self.table.get(connection_id)
        if connection is None:
            return False
        connection.notify_disconnect = notify_backend
        self.table.remove(connection)
        if connection.transport is not None:
            connection.transport.abort()
        return True

    async def close_connection(self, connection_id: str, code: int = 1000) -> bool:
        """Close a connection from the gateway side with ``code`` (``$disconnect`` follows)."""
        connection = self.table.get(connection_id)
        if connection is None:
            return False
        await self.websocket.request_close(connection, code)
        return True


class EmulatorThread:
    """A :class:`GatewayEmulator` on its own event loop in a daemon thread."""

    def __init__(self, config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = GatewayEmulator(config)
        self._host = host
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="ws-gateway-emulator", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.emulator.start(self._host, self._port))
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def start(self, timeout: float = 10.0) -> EmulatorThread:
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("the emulator did not start in time")
        if self._error is not None:
            raise RuntimeError(f"the emulator failed to start: {self._error}") from self._error
        return self

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the emulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, grace: float | None = None) -> None:
        """Stop the emulator (see :meth:`GatewayEmulator.stop`) and its thread."""
        if not self._thread.is_alive():
            return
        wait = (self.emulator.config.shutdown_grace if grace is None else grace) + 10
        try:
            self.call(self.emulator.stop(grace), timeout=wait)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Thread-safe conveniences mirroring the emulator's test controls.
    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def management_url(self) -> str:
        return self.emulator.management_url

    @property
    def port(self) -> int:
        return self.emulator.port

    @property
    def config(self) -> EmulatorConfig:
        return self.emulator.config

    @property
    def stats(self) -> Counter[str]:
        return self.emulator.stats

    @property
    def load(self) -> MessageLoad:
        return self.emulator.load

    @property
    def calls(self) -> list[IntegrationCall]:
        return self.call(_apply(lambda: self.emulator.calls))

    def connection_ids(self) -> list[str]:
        return self.call(_apply(self.emulator.connection_ids))

    def throttle_next(self, count: int) -> None:
        self._loop.call_soon_threadsafe(self.emulator.throttle_next, count)

    def drop(self, connection_id: str, *, notify_backend: bool = False) -> bool:
        return self.call(self.emulator.drop(connection_id, notify_backend=notify_backend))

    def close_connection(self, connection_id: str, code: int = 1000) -> bool:
        return self.call(self.emulator.close_connection(connection_id, code))


async def _apply(function: Callable[[], T]) -> T:
    """Evaluate ``function`` on the loop that runs this coroutine."""
    return function()
