"""Sharded broadcasts on real task workers: throughput with K = 1 and 2, the rate budget, a kill -9.

    python -m benchmarks.sharded                       # N = 100,000 recipients
    python -m benchmarks.sharded --recipients 30000 --json sharded.json

What it does, in one run (PostgreSQL at 127.0.0.1:5432, Redis at 127.0.0.1:6379):

1. Starts the loopback latency endpoint (``aws_ws_async.testing.latency_endpoint``, 20 ms per
   request) in this process and samples its request counter every 50 ms.
2. Creates the e2e project (tests/e2e_harness.py) on a fresh PostgreSQL database, with
   django-tasks-db as the task backend (tests/e2e_workers_settings.py).
3. For K = 1 and K = 2 ``db_worker`` processes, no budget to speak of: N recipients enqueued,
   aggregate msgs/s from the Broadcast row (recipients / (finished_at - started_at)).
4. K = 2 under a Redis budget below capacity (``--budget``, 2,000/s): the highest rate in any
   one-second window at the endpoint and the mean rate (targets: <= 1.05x and >= 0.9x budget).
5. K = 2, ``kill -9`` of one worker after the first checkpoints: the duplicates (posts beyond
   the recipients; the endpoint answers every post 200) and the totals.

It prints a table and, with ``--json``, writes every number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ["AWS_WS_ASYNC_TEST_DB"] = "postgres"  # before the harness reads it

from aws_ws_async.testing.latency_endpoint import LatencyEndpoint
from tests.e2e_harness import ROOT, E2EProject, _pg_params

REDIS = "redis://127.0.0.1:6379/0"


class Endpoint:
    """The latency endpoint on its own thread and loop, its request counter sampled."""

    def __init__(self, latency: float) -> None:
        self.server = LatencyEndpoint(latency)
        self.samples: list[tuple[float, int]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self._ready.wait(10)
        threading.Thread(target=self._sample, daemon=True).start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.server.start())
        self._ready.set()
        self._loop.run_forever()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.server.requests))
            time.sleep(0.05)

    def window(self, since: float) -> dict[str, float]:
        """Highest count in any one-second window after ``since``, and the mean rate."""
        points = [(t, n) for t, n in self.samples if t >= since]
        moving = [(t, n) for t, n in points if n > points[0][1]]
        if len(moving) < 2:
            return {"highest_per_s": 0.0, "mean_per_s": 0.0}
        highest, left = 0, 0
        for t, n in points:
            while points[left][0] < t - 1.0:
                left += 1
            highest = max(highest, n - points[left][1])
        # The last post is the first sample that reached the final count: the samples after it
        # (the broadcast's end being noticed, the workers stopping) are no part of the run.
        final = moving[-1][1]
        first, last = moving[0], next(p for p in moving if p[1] == final)
        posts = last[1] - points[0][1]
        per_second = [  # posts in each whole second from the first post on: where gaps are
            self._count_between(points, first[0] + i, first[0] + i + 1)
            for i in range(int(last[0] - first[0]))
        ]
        return {
            "highest_per_s": float(highest),
            "mean_per_s": posts / (last[0] - first[0]),
            "per_second": per_second,
        }

    @staticmethod
    def _count_between(points: list[tuple[float, int]], start: float, end: float) -> int:
        inside = [n for t, n in points if start <= t <= end]
        return inside[-1] - inside[0] if len(inside) > 1 else 0

    def stop(self) -> None:
        self._stop.set()
        self._loop.call_soon_threadsafe(self._loop.stop)


def sql(project: E2EProject, query: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dbname=project.db_name, autocommit=True, **_pg_params()) as conn:
        return list(conn.execute(query).fetchall())  # type: ignore[arg-type]


def seed_and_enqueue(
    project: E2EProject, channel: str, count: int, env: dict[str, str] | None = None
) -> int:
    """Seed ``count`` sessions and enqueue; ``env`` as the workers' (the shard size and the
    checkpoint interval are written into the Broadcast row here, at enqueue time)."""
    code = f"""
from aws_ws_async.models import ApiGateway, WebSocketSession
g, _ = ApiGateway.objects.get_or_create(
    api_id="bench00001",
    defaults=dict(api_name="Bench", stage_name="prod", api_created=True, deployment_id="d1"),
)
WebSocketSession.objects.bulk_create(
    (WebSocketSession(connection_id=f"{channel}{{i:07d}}=", channel_name="{channel}",
     api_gateway=g) for i in range({count})),
    batch_size=5000,
)
print(WebSocketSession.objects.for_channel("{channel}").enqueue_message({{"hi": 1}}).pk)
"""
    saved = project.env
    project.env = {**saved, **(env or {})}
    try:
        return int(project.shell(code, timeout=600).strip().splitlines()[-1])
    finally:
        project.env = saved


def start_workers(project: E2EProject, k: int, env: dict[str, str], logs: Path) -> list[Any]:
    workers = []
    for n in range(k):
        out = (logs / f"worker{n}-{time.time_ns()}.log").open("wb")
        workers.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "django", "db_worker", "--interval", "0.1"),
                    *("--no-startup-delay", "--no-reload", "--worker-id", f"bench-{n}"),
                ],
                env={**project.env, **env},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return workers


def stop_workers(workers: list[Any]) -> None:
    for process in workers:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in workers:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def finished(project: E2EProject, broadcast_id: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (row,) = sql(
            project,
            "SELECT status, delivered, gone, failed, recipients, "
            "EXTRACT(EPOCH FROM finished_at - started_at) FROM aws_ws_async_broadcast "
            f"WHERE id = {broadcast_id}",
        )
        if row[0] in ("finished", "failed"):
            keys = ("status", "delivered", "gone", "failed", "recipients", "seconds")
            result = dict(zip(keys, row, strict=True))
            result["seconds"] = float(result["seconds"])
            result["msgs_per_s"] = result["recipients"] / result["seconds"]
            return result
        time.sleep(0.2)
    raise TimeoutError(f"broadcast {broadcast_id} not finished after {timeout} s")


def scenario(
    project: E2EProject,
    endpoint: Endpoint,
    name: str,
    k: int,
    count: int,
    env: dict[str, str],
    logs: Path,
    *,
    kill: bool = False,
) -> dict[str, Any]:
    broadcast_id = seed_and_enqueue(project, name, count, env)
    before, since = endpoint.server.requests, time.monotonic()
    workers = start_workers(project, k, env, logs)
    try:
        killed = False
        if kill:
            deadline = time.monotonic() + 120
            while not killed and time.monotonic() < deadline:
                done = sql(
                    project,
                    "SELECT count(*) FROM aws_ws_async_broadcastshard "
                    f"WHERE broadcast_id = {broadcast_id} AND done_pk IS NOT NULL "
                    "AND status = 'running'",
                )[0][0]
                if done >= k:  # every worker is past a checkpoint: kill one mid-shard
                    os.killpg(workers[0].pid, signal.SIGKILL)
                    workers[0].wait(5)
                    killed = True
                time.sleep(0.05)
        result = finished(project, broadcast_id, timeout=900)
    finally:
        stop_workers(workers)
    result.update(endpoint.window(since))
    result["k"], result["posts"] = k, endpoint.server.requests - before
    result["duplicates"] = result["posts"] - result["recipients"]
    if kill:
        result["killed"] = killed
    return result


MEMORY_CODE = """
import json, resource, tracemalloc
from aws_ws_async.models import Broadcast, BroadcastShard
from aws_ws_async.scaleout import runner

def hwm_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

def measured(fn, *args):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM (peak RSS) to the current RSS
    base = hwm_kib()
    tracemalloc.start()
    fn(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"python_peak_kib": peak // 1024, "rss_growth_kib": hwm_kib() - base}

b = Broadcast.objects.get(pk=BROADCAST)
out = {"coordinator": measured(runner.coordinate, b.pk, "default")}
shard = BroadcastShard.objects.filter(broadcast=b).order_by("index").first()
out["shard"] = measured(runner.run_shard, shard.pk, "default")
out["shards"] = BroadcastShard.objects.filter(broadcast=b).count()
print("MEMORY " + json.dumps(out))
"""


def memory(project: E2EProject, sizes: list[int]) -> dict[str, Any]:
    """Peak memory of the coordinator and of one shard (10,000 recipients) at each N.

    Both run in a fresh ``manage.py shell`` (no worker), measured around the call only: Python's
    own peak (tracemalloc) and the growth of the process's peak RSS (VmHWM, reset first).
    """
    found: dict[str, Any] = {}
    for n in sizes:
        broadcast_id = seed_and_enqueue(project, f"m{n}", n)
        out = project.shell(MEMORY_CODE.replace("BROADCAST", str(broadcast_id)), timeout=900)
        line = next(x for x in out.splitlines() if x.startswith("MEMORY "))
        found[str(n)] = json.loads(line.removeprefix("MEMORY "))
    return found


def report(results: dict[str, Any], args: argparse.Namespace) -> None:
    """The table of whatever scenarios ran, the ratios and the memory figures."""
    print(f"\nsharded broadcasts, {args.latency_ms:.0f} ms endpoint, PostgreSQL, db_worker")
    header = f"{'scenario':<28}{'recipients':>11}{'msgs/s':>9}{'highest 1 s':>13}{'dups':>6}"
    print(header)
    print("-" * len(header))
    labels = {
        "k1": "K=1",
        "k2": "K=2",
        "budget_capacity": "K=2, same, no budget",
        "budget": f"K=2, budget {results.get('budget_per_s', 0):.0f}/s (Redis)",
        "kill": "K=2, kill -9 of one worker",
    }
    for key, label in labels.items():
        if key in results:
            r = results[key]
            print(
                f"{label:<28}{r['recipients']:>11}{r['msgs_per_s']:>9.0f}"
                f"{r['highest_per_s']:>13.0f}{r['duplicates']:>6}"
            )
    if "k1" in results and "k2" in results:
        results["ratio_k2_k1"] = results["k2"]["msgs_per_s"] / results["k1"]["msgs_per_s"]
        print(f"K=2 / K=1: {results['ratio_k2_k1']:.2f}x")
    if "budget" in results:
        budget = results["budget"]
        rate = results["budget_per_s"]
        results["budget_highest_x"] = budget["highest_per_s"] / rate
        results["budget_mean_x"] = budget["mean_per_s"] / rate
        capacity = results["budget_capacity"]["mean_per_s"]
        if capacity < rate / 0.9:
            print(f"budget: the machine posted only {capacity:.0f}/s without one: not filled")
        print(
            f"budget: highest one-second window {results['budget_highest_x']:.3f}x "
            f"(target <= 1.05), mean {results['budget_mean_x']:.3f}x (target >= 0.9)"
        )
        print(f"budget: posts per second {budget['per_second']}")
    if "kill" in results:
        kill = results["kill"]
        print(
            f"kill -9: {kill['status']}, delivered {kill['delivered']} of {kill['recipients']}, "
            f"failed {kill['failed']}, {kill['duplicates']} duplicates (bound 500 per crash), "
            f"killed mid-run: {kill['killed']}"
        )
    for n, m in results.get("memory", {}).items():
        c, s = m["coordinator"], m["shard"]
        print(
            f"memory at N={int(n):,} ({m['shards']} shards): coordinator Python peak "
            f"{c['python_peak_kib']} KiB, RSS +{c['rss_growth_kib']} KiB; one shard (10,000) "
            f"Python peak {s['python_peak_kib']} KiB, RSS +{s['rss_growth_kib']} KiB"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--budget-recipients", type=int, default=30_000)
    parser.add_argument(
        "--budget",
        type=float,
        default=2000.0,
        help="posts/s of the budget scenario; 0: --budget-share of the capacity just measured",
    )
    parser.add_argument("--budget-share", type=float, default=0.6)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--memory-sizes",
        type=int,
        nargs="+",
        default=[20_000, 100_000],
        help="N of the memory scenario (coordinator and one shard)",
    )
    parser.add_argument(
        "--only",
        choices=("k1", "k2", "budget", "kill", "memory"),
        action="append",
        help="run only these scenarios (repeatable); default: all",
    )
    args = parser.parse_args(argv)
    wanted = set(args.only or ("k1", "k2", "budget", "kill", "memory"))

    endpoint = Endpoint(args.latency_ms / 1000)
    logs = Path(tempfile.mkdtemp(prefix="sharded-"))
    common = {
        "DJANGO_SETTINGS_MODULE": "tests.e2e_workers_settings",
        "E2E_SHARD_SIZE": "10000",
        "E2E_CHECKPOINT_EVERY": "500",
        "E2E_LEASE_SECONDS": "5",
        "E2E_MAX_CONCURRENCY": str(args.concurrency),
    }
    project = E2EProject(logs, management_endpoint_url=endpoint.server.url, extra_env=common)
    project.setup()
    account = f"bench-{os.getpid()}-{time.time_ns()}"
    free = {"E2E_RATE_BUDGET": "1000000"}  # far above capacity: no budget to speak of
    budgeted = {
        # Many more shards than workers: the last shards end close together (no lone tail).
        "E2E_SHARD_SIZE": str(max(500, args.budget_recipients // 30)),
        "E2E_RATE_BUDGET": str(args.budget),
        "E2E_BUDGET_REDIS": REDIS,
        "E2E_BUDGET_ACCOUNT": account,
    }
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    try:
        n = args.recipients
        if "k1" in wanted:
            results["k1"] = scenario(project, endpoint, "one", 1, n, free, logs)
        if "k2" in wanted:
            results["k2"] = scenario(project, endpoint, "two", 2, n, free, logs)
        if "budget" in wanted:
            # The same broadcast unbudgeted first: what the machine can do right now. A budget
            # above that cannot be filled (the mean then measures the machine, not the budget).
            shards = {"E2E_SHARD_SIZE": budgeted["E2E_SHARD_SIZE"]}
            capacity = scenario(
                project, endpoint, "cap", 2, args.budget_recipients, {**free, **shards}, logs
            )
            results["budget_capacity"] = capacity
            rate = args.budget or round(args.budget_share * capacity["mean_per_s"], -1)
            results["budget_per_s"] = rate
            results["budget"] = scenario(
                project,
                endpoint,
                "bud",
                2,
                args.budget_recipients,
                {**budgeted, "E2E_RATE_BUDGET": str(rate)},
                logs,
            )
        if "kill" in wanted:
            results["kill"] = scenario(project, endpoint, "kil", 2, n, free, logs, kill=True)
        if "memory" in wanted:
            results["memory"] = memory(project, args.memory_sizes)
    finally:
        project.close()
        endpoint.stop()
    report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"JSON: {args.json}")


if __name__ == "__main__":
    main()
