"""The load generator of ``benchmarks.request_server``: a separate process, so its CPU is not
the server's. Reads a JSON plan (``url``, ``concurrency``, ``requests``: a list of
``[path, headers, query, body]``), sends it over keep-alive connections with ``concurrency``
requests in flight, and prints JSON: wall time, status counts, p50/p99 latency in ms.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import aiohttp


async def drive(plan: dict[str, Any]) -> dict[str, Any]:
    url = plan["url"]
    queue: asyncio.Queue[list[Any]] = asyncio.Queue()
    for item in plan["requests"]:
        queue.put_nowait(item)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    concurrency = int(plan["concurrency"])
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, skip_auto_headers=["User-Agent"]) as http:

        async def worker() -> None:
            while not queue.empty():
                path, headers, query, body = queue.get_nowait()
                started = time.perf_counter()
                try:
                    async with http.post(
                        f"{url}{path}" + (f"?{query}" if query else ""),
                        data=body.encode(),
                        headers=headers,
                    ) as response:
                        await response.read()
                        statuses[response.status] += 1
                except aiohttp.ClientError:
                    statuses[0] += 1
                latencies.append((time.perf_counter() - started) * 1000)

        wall0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - wall0
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    return {
        "requests": len(latencies),
        "wall_s": wall,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def main() -> None:
    plan = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(drive(plan))))


if __name__ == "__main__":
    main()
