"""Emulator load benchmark: memory and tasks while one client floods a slow backend.

Run ``python -m benchmarks.emulator_load`` (``--help`` for flags). One WebSocket client sends
``--frames`` text frames as fast as it can through a :class:`GatewayEmulator` to a backend that
answers every message post only after ``--backend-delay`` seconds. While the posts are
outstanding the benchmark samples the traced Python memory (``tracemalloc``, the allocations of
this process, i.e. emulator, backend and client together) and the number of asyncio tasks once
the emulator has read every frame (plus ``--settle`` seconds), then closes the socket and
measures how long the backend waits for the ``$disconnect``. To compare with an older tree, run
the same file with that tree first on ``PYTHONPATH`` (it uses only the emulator's public API and
``emulator.table``).

The emulator bounds each connection's message posts (in flight plus queued); a flood beyond
that is refused with an error frame instead of growing one task per frame. Numbers are printed
as a table and, with ``--json PATH``, written for machines. Nothing is asserted: compare runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import tracemalloc
from typing import Any

import aiohttp
from aiohttp import web

from aws_ws_async.emulator import EmulatorConfig, GatewayEmulator


async def run(frames: int, backend_delay: float, settle: float) -> dict[str, Any]:
    """One measurement; returns the numbers the table shows."""
    disconnected = asyncio.Event()
    release = asyncio.Event()
    posts = 0
    first_post: list[float] = []

    async def handle(request: web.Request) -> web.Response:
        nonlocal posts
        await request.read()
        if request.path.endswith("/disconnect"):
            disconnected.set()
        elif not request.path.endswith("/connect"):
            posts += 1
            if not first_post:
                first_post.append(time.perf_counter())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(release.wait(), backend_delay)
        return web.Response()

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    emulator = GatewayEmulator(EmulatorConfig(f"http://127.0.0.1:{port}/ws/"))
    await emulator.start()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(emulator.url, autoclose=False)
            started = time.perf_counter()
            for index in range(frames):
                await ws.send_str(f'{{"action": "bench", "n": {index}}}')
            sent = time.perf_counter() - started
            async with asyncio.timeout(120):  # until the emulator has read every frame
                while sum(c.messages_in for c in emulator.table.all()) < frames:
                    await asyncio.sleep(0.01)
            read = time.perf_counter() - started
            await asyncio.sleep(settle)
            current, peak = tracemalloc.get_traced_memory()
            tasks = len(asyncio.all_tasks())
            posts_while_busy = posts
            closing = time.perf_counter()
            await ws.close()
            try:
                await asyncio.wait_for(disconnected.wait(), backend_delay + 5)
                disconnect_after: float | None = time.perf_counter() - closing
            except TimeoutError:
                disconnect_after = None
    finally:
        tracemalloc.stop()
        release.set()
        await emulator.stop()
        await runner.cleanup()
    return {
        "frames": frames,
        "send_seconds": round(sent, 3),
        "emulator_read_all_seconds": round(read, 3),
        "traced_mb_while_busy": round((current - baseline) / 1e6, 1),
        "traced_mb_peak": round((peak - baseline) / 1e6, 1),
        "asyncio_tasks_while_busy": tasks,
        "backend_posts_while_busy": posts_while_busy,
        "first_post_after_seconds": (round(first_post[0] - started, 3) if first_post else None),
        "disconnect_after_seconds": (
            None if disconnect_after is None else round(disconnect_after, 3)
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emulator_load")
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--backend-delay", type=float, default=10.0)
    parser.add_argument(
        "--settle", type=float, default=0.5, help="Seconds after the last frame was read."
    )
    parser.add_argument("--json", help="Also write the results to this file.")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.frames, args.backend_delay, args.settle))
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
