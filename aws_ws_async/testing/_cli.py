"""The command line both loopback endpoints share: start one, print its port, serve.

A benchmark starts an endpoint in a child process and reads the port from its first line of
output, so both endpoints must take the same flags and print the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable
from typing import Protocol


class Endpoint(Protocol):
    port: int

    async def start(self) -> str: ...

    async def stop(self) -> None: ...


def serve_until_interrupted(
    description: str, make: Callable[[float, int], Endpoint], argv: list[str] | None = None
) -> None:
    """Parse ``--port`` and ``--latency-ms``, then serve ``make(latency_seconds, port)``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args(argv)

    async def serve() -> None:
        endpoint = make(args.latency_ms / 1000, args.port)
        await endpoint.start()
        print(endpoint.port, flush=True)  # the parent process reads the port
        try:
            await asyncio.Event().wait()
        finally:
            await endpoint.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
