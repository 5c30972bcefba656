"""Any ASGI application under uvicorn in a background thread, for tests next to the emulator.

pytest-django's ``live_server`` is a WSGI server: async views run, but work they leave on the
event loop after answering (``send_after_connect`` welcome messages, for one) dies with the
per-request loop. Under a real ASGI server it runs as in production. This module stays
framework-free: the caller passes the application (``django.core.asgi.get_asgi_application()``)
and, optionally, a coroutine to run on the server's loop before it stops.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

#: Seconds to wait for the server to start or stop.
TIMEOUT_SECONDS = 10.0


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class AsgiServerThread:
    """uvicorn with ``--ws none`` (as behind API Gateway) on its own loop in a daemon thread."""

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        before_stop: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        import uvicorn  # the test extra has it; imported late so the plugin loads without it

        self.host = host
        self.port = port or _free_port(host)
        self._before_stop = before_stop
        config = uvicorn.Config(
            app,
            host=host,
            port=self.port,
            ws="none",
            lifespan="off",
            log_level="warning",
        )
        self._server = uvicorn.Server(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete,
            args=(self._server.serve(),),
            name="asgi-server",
            daemon=True,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> AsgiServerThread:
        self._thread.start()
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the ASGI server did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._before_stop is not None:
            future = asyncio.run_coroutine_threadsafe(self._run_before_stop(), self._loop)
            future.result(timeout=TIMEOUT_SECONDS)
        self._server.should_exit = True
        self._thread.join(timeout=TIMEOUT_SECONDS)
        if not self._thread.is_alive():
            self._loop.close()

    async def _run_before_stop(self) -> None:
        assert self._before_stop is not None
        await self._before_stop()

    def __enter__(self) -> AsgiServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
