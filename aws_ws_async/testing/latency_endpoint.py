"""A minimal ``@connections`` endpoint that only adds latency, for load tests and benchmarks.

:class:`~aws_ws_async.testing.FaultEndpoint` runs on aiohttp's web framework, which costs a
few hundred microseconds of CPU per request; at thousands of requests per second on a small
machine the endpoint, not the client under test, becomes the bottleneck. This server speaks
just enough HTTP/1.1 (keep-alive, ``Content-Length`` bodies, no pipelining needed) on a bare
``asyncio.Protocol`` and answers each request after ``latency`` seconds with a timer instead of
a task: POST 200, DELETE 204, anything else 200 with ``{}``.

Run it as ``python -c "from aws_ws_async.testing.latency_endpoint import main; main()"
--latency-ms 20``: it prints its port, then serves until killed.
"""

from __future__ import annotations

import asyncio

from aws_ws_async.testing._cli import serve_until_interrupted

_RESPONSES = {
    b"POST": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nx-amzn-RequestId: bench\r\n\r\n",
    b"DELETE": b"HTTP/1.1 204 No Content\r\nx-amzn-RequestId: bench\r\n\r\n",
}
_DEFAULT = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    b"x-amzn-RequestId: bench\r\n\r\n{}"
)


class _Protocol(asyncio.Protocol):
    def __init__(self, server: LatencyEndpoint) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            method = head.split(b" ", 1)[0]
            self.server.requests += 1
            response = _RESPONSES.get(method, _DEFAULT)
            loop = asyncio.get_running_loop()
            if self.server.latency > 0:
                loop.call_later(self.server.latency, self._reply, response)
            else:
                self._reply(response)

    def _reply(self, response: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(response)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


class LatencyEndpoint:
    """Serve on 127.0.0.1 (a free port unless given) until :meth:`stop`."""

    def __init__(self, latency: float = 0.02, *, port: int = 0) -> None:
        self.latency = latency
        self.port = port
        self.requests = 0
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Protocol(self), "127.0.0.1", self.port, backlog=1024
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


def main(argv: list[str] | None = None) -> None:
    serve_until_interrupted(
        "Latency-only @connections endpoint.",
        lambda latency, port: LatencyEndpoint(latency, port=port),
        argv,
    )


if __name__ == "__main__":
    main()
