"""Request path under a real uvicorn, driven by a separate load-generating process.

Run ``python -m benchmarks.request_server --db postgres --pool`` (``--help`` for flags). For each
mode a fresh uvicorn process (uvloop, httptools, ``--ws none``, one worker, no access log)
serves ``benchmarks.server_app:<mode>``; ``benchmarks.request_load`` (another process) sends each
scenario at ``--concurrency`` over keep-alive connections, after a warm-up. Measured:

* requests/s and p50/p99 latency, from the load generator;
* server CPU per request: the uvicorn process's ``utime + stime`` from ``/proc/<pid>/stat``
  over the scenario, divided by its requests (all threads, so ``sync_to_async`` hops count);
* non-200 responses, counted; any makes the run fail (the numbers would be of refusals).

Modes (before/after side by side): ``full`` (the views in ``urls.py`` behind the seven
``startproject`` middleware), ``fast`` (``GatewayASGIHandler``: ``/ws/`` straight to the view),
``bare`` (no middleware at all: the floor), ``sync`` (the baseline: gunicorn's sync worker
serving ``benchmarks.predecessor_view``, the same checks and statements with the sync ORM,
``CONN_MAX_AGE=600``; its ``/ok`` is a trivial sync view, the sync floor).

Scenarios: ``baseline`` (a trivial view: ``/ok``), ``message`` (one handler doing nothing),
``connect`` (with a one-time token) and ``disconnect``. The table prints ``x floor``: CPU per
request over the trivial view's of the ``bare`` mode in the same run. All servers run at once
and the scenarios are interleaved across modes ``--repeat`` times (medians shown), so the
machine's load hits every mode alike.
A summary then sets the fast entry point against issue 15's targets (CPU per route, the
message's per-core rate over the sync baseline's) and every floor. ``--json PATH`` writes
everything, each repeat included; ``--profile DIR`` adds a py-spy breakdown per route
(``benchmarks.request_profile``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks import request_path, request_profile
from benchmarks._postgres import ensure_postgres_database

MODES = ("full", "fast", "async", "bare", "sync")
#: uvloop and httptools (the ``[fast]`` extra) when installed, as docs/deployment.md advises;
#: else uvicorn's pure-Python loop and parser, so the benchmark still runs (slower figures).
LOOP = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
HTTP = "httptools" if importlib.util.find_spec("httptools") else "h11"
SCENARIOS = ("baseline", "message", "connect", "disconnect")
ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """``utime + stime`` of the process (every thread) and its live children (gunicorn's
    worker under its arbiter), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / TICKS
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        total += sum(cpu_seconds(int(child)) for child in children)
    return total


class Plans:
    """Request lists per scenario; tokens and connection ids are single-use, so handed out once."""

    def __init__(self, world: request_path.World) -> None:
        self.world = world
        self.tokens = iter(world.tokens)
        self.disconnects = iter(world.disconnect_ids)
        self.connects = iter(range(10**9))

    def make(self, scenario: str, count: int) -> list[list[Any]]:
        world = self.world
        message = json.dumps({"action": "noop"})
        out: list[list[Any]] = []
        for i in range(count):
            if scenario == "baseline":
                out.append(["/ok", {"Host": "bench.example.com"}, "", "{}"])
            elif scenario == "message":
                headers = request_path.gateway_headers(world.message_ids[i % 50])
                out.append(["/ws/default", headers, "", message])
            elif scenario == "connect":
                headers = request_path.gateway_headers(f"srv{next(self.connects)}=")
                headers.update(
                    {
                        "Origin": "https://bench.example.com",
                        "Cookie": f"sessionid={world.session_key}",
                        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                        "Sec-WebSocket-Version": "13",
                    }
                )
                query = f"ws_token={next(self.tokens)}&channel=bench"
                out.append(["/ws/connect", headers, query, ""])
            else:
                headers = request_path.gateway_headers(next(self.disconnects))
                out.append(["/ws/disconnect", headers, "", ""])
        return out


def load(url: str, requests: list[list[Any]], concurrency: int) -> dict[str, Any]:
    plan = json.dumps({"url": url, "concurrency": concurrency, "requests": requests})
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.request_load"],
        input=plan,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def start_server(mode: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    if mode == "sync":  # the baseline: gunicorn's sync worker, as the predecessor ran
        env = {**env, "BENCH_SERVER_SYNC": "1"}
        command = [
            sys.executable, "-m", "gunicorn", "benchmarks.server_app:sync", "--workers", "1",
            "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
        ]  # fmt: skip
    else:
        app = mode
        if mode == "async":  # the fast entry point with the async database path on
            env = {**env, "BENCH_SERVER_ASYNC_DB": "1"}
            app = "async_"
        command = [
            sys.executable, "-m", "uvicorn", f"benchmarks.server_app:{app}",
            "--host", "127.0.0.1", "--port", str(port), "--loop", LOOP, "--http", HTTP,
            "--ws", "none", "--no-access-log", "--log-level", "warning", "--lifespan", "off",
        ]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            request = urllib.request.Request(
                f"{url}/ok", data=b"{}", headers={"Host": "bench.example.com"}
            )
            urllib.request.urlopen(request, timeout=2).read()
            return server, url
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"uvicorn ({mode}) did not start") from None
            time.sleep(0.2)


def measure(
    server: subprocess.Popen[bytes], url: str, requests: list[list[Any]], concurrency: int
) -> dict[str, Any]:
    cpu0 = cpu_seconds(server.pid)
    result = load(url, requests, concurrency)
    cpu = cpu_seconds(server.pid) - cpu0
    result["requests_per_s"] = result["requests"] / result["wall_s"]
    result["cpu_ms_per_request"] = cpu / result["requests"] * 1000
    result["non_200"] = sum(v for k, v in result["statuses"].items() if k != "200")
    return result


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-metric medians of the repeats (non-200 summed: every one counts)."""
    keys = ("requests_per_s", "cpu_ms_per_request", "p50_ms", "p99_ms")
    row: dict[str, Any] = {k: statistics.median(r[k] for r in runs) for k in keys}
    row["non_200"] = sum(r["non_200"] for r in runs)
    row["requests"] = sum(r["requests"] for r in runs)
    row["runs"] = runs
    return row


def run_all(
    env: dict[str, str], plans: Plans, args: argparse.Namespace
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every mode's server up at once; scenarios interleaved across modes, ``--repeat`` times,
    so a change in the machine's load hits every mode alike (each server's CPU is its own)."""
    servers = {mode: start_server(mode, env) for mode in args.modes}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {m: {} for m in args.modes}
    wanted = {
        mode: [s for s in args.scenarios if mode != "bare" or s == "baseline" or args.bare_all]
        for mode in args.modes
    }
    try:
        for mode, (_server, url) in servers.items():
            for scenario in wanted[mode]:
                load(url, plans.make(scenario, args.warmup), args.concurrency)
        for _ in range(args.repeat):
            for scenario in args.scenarios:
                for mode, (server, url) in servers.items():
                    if scenario in wanted[mode]:
                        requests = plans.make(scenario, args.requests)
                        result = measure(server, url, requests, args.concurrency)
                        runs[mode].setdefault(scenario, []).append(result)
        if args.profile:
            profile_round(servers, plans, args, wanted)
    finally:
        for server, _url in servers.values():
            server.terminate()
            server.wait(timeout=10)
    return {mode: {s: median_of(r) for s, r in rows.items()} for mode, rows in runs.items()}


def profile_round(
    servers: dict[str, tuple[subprocess.Popen[bytes], str]],
    plans: Plans,
    args: argparse.Namespace,
    wanted: dict[str, list[str]],
) -> None:
    """One more round per mode and scenario with py-spy attached (not in the medians: the
    sampler's reads of the server's memory would weigh on its CPU)."""
    args.profile.mkdir(parents=True, exist_ok=True)
    for scenario in args.scenarios:
        for mode, (server, url) in servers.items():
            if scenario in wanted[mode]:
                requests = plans.make(scenario, args.requests)
                output = args.profile / f"{mode}-{scenario}.txt"
                recorder = request_profile.start(server.pid, output)
                time.sleep(1.0)  # py-spy attaches
                load(url, requests, args.concurrency)
                request_profile.stop(recorder)


def print_table(results: dict[str, dict[str, dict[str, Any]]], args: argparse.Namespace) -> None:
    floor = results.get("bare", {}).get("baseline", {}).get("cpu_ms_per_request")
    print(
        f"\nrequest path under uvicorn (1 worker), load from a separate process: "
        f"medians of {args.repeat} x {args.requests} requests per scenario, "
        f"concurrency {args.concurrency}, "
        f"database {args.db}{' (pooled)' if args.pool else ''}"
    )
    header = (
        f"{'mode':<6}{'scenario':<12}{'req/s':>8}{'CPU ms/req':>12}{'x floor':>9}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}"
    )
    print(header)
    print("-" * len(header))
    for mode, rows in results.items():
        for scenario, row in rows.items():
            ratio = row["cpu_ms_per_request"] / floor if floor else float("nan")
            print(
                f"{mode:<6}{scenario:<12}{row['requests_per_s']:>8.0f}"
                f"{row['cpu_ms_per_request']:>12.2f}{ratio:>9.2f}{row['p50_ms']:>9.2f}"
                f"{row['p99_ms']:>9.2f}{row['non_200']:>9}"
            )


#: Issue 15's targets: server CPU per request of the fast entry point, in ms.
TARGETS_MS = {"message": 1.5, "connect": 4.0, "disconnect": 1.5}
#: ... and the message route's per-core rate over the sync baseline's, at least.
TARGET_RATE_RATIO = 2.5


def summarize(results: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Per route of the fastest configuration run (``async`` if it ran, else ``fast``): CPU
    against its target, the per-core rate over the sync baseline's (``sync`` CPU / ours), and
    CPU over each floor of the same run."""
    best = "async" if "async" in results else "fast"

    def cpu(mode: str, scenario: str) -> float | None:
        row = results.get(mode, {}).get(scenario)
        return None if row is None else float(row["cpu_ms_per_request"])

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    summary: dict[str, Any] = {}
    for scenario, target in TARGETS_MS.items():
        ours = cpu(best, scenario)
        if ours is None:
            continue
        summary[scenario] = {
            "mode": best,
            "cpu_ms": ours,
            "target_ms": target,
            "meets_target": ours <= target,
            "per_core_rate_vs_sync": ratio(cpu("sync", scenario), ours),
            "vs_full_middleware": ratio(cpu("full", scenario), ours),
            "vs_fast_sync_database": ratio(cpu("fast", scenario), ours),
            "x_async_floor_no_middleware": ratio(ours, cpu("bare", "baseline")),
            "x_async_floor_middleware": ratio(ours, cpu("full", "baseline")),
            "x_sync_floor_middleware": ratio(ours, cpu("sync", "baseline")),
        }
    message = summary.get("message")
    if message and message["per_core_rate_vs_sync"] is not None:
        message["meets_rate_target"] = message["per_core_rate_vs_sync"] >= TARGET_RATE_RATIO
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    mode = next(iter(summary.values()), {}).get("mode", "fast")
    print(
        f"\n{mode} mode against the targets (CPU ms; rate = per-core requests/s over the "
        f"sync baseline's, target >= {TARGET_RATE_RATIO} for message)"
    )
    header = (
        f"{'route':<12}{'CPU ms':>8}{'target':>8}{'met':>5}{'rate':>7}"
        f"{'x bare':>8}{'x full/ok':>10}{'x sync/ok':>10}"
    )
    print(header)
    print("-" * len(header))
    for route, row in summary.items():
        print(
            f"{route:<12}{row['cpu_ms']:>8.2f}{row['target_ms']:>8.2f}"
            f"{'yes' if row['meets_target'] else 'no':>5}{fmt(row['per_core_rate_vs_sync']):>7}"
            f"{fmt(row['x_async_floor_no_middleware']):>8}"
            f"{fmt(row['x_async_floor_middleware']):>10}{fmt(row['x_sync_floor_middleware']):>10}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # 500 by default: the sync baseline serves $connect at about 10-20 req/s on a busy machine.
    request_path.add_common_arguments(parser, requests=500, db="postgres", scenarios=SCENARIOS)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument(
        "--bare-all", action="store_true", help="run every scenario in bare mode too"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy each server into this directory"
    )
    args = parser.parse_args(argv)
    if "async" in args.modes and args.db != "postgres":
        print("the async database path is PostgreSQL only: skipping the async mode")
        args.modes = [mode for mode in args.modes if mode != "async"]
    if args.profile and not request_profile.available():
        print("py-spy is not installed (pip install py-spy): running unprofiled")
        args.profile = None
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        if args.db == "postgres":
            ensure_postgres_database("aws_ws_async_bench_views")
        request_path.configure(args.db, workdir, args.pool)
        request_path.build_urls()
        per_mode = args.warmup + args.requests * (args.repeat + (1 if args.profile else 0))
        world = request_path.build_world(per_mode * len(args.modes), 1)
        env = {
            **os.environ,
            "BENCH_SERVER_DB": args.db,
            "BENCH_SERVER_POOL": "1" if args.pool else "",
            "BENCH_SERVER_WORKDIR": workdir,
            "PYTHONPATH": str(ROOT),
        }
        plans = Plans(world)
        results = run_all(env, plans, args)
    print_table(results, args)
    summary = summarize(results)
    print_summary(summary)
    profile = request_profile.report(args.profile) if args.profile else None
    bad = sum(row["non_200"] for rows in results.values() for row in rows.values())
    if args.json:
        params = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        document = {"params": params, "summary": summary, "results": results}
        if profile is not None:
            document["profile_percent"] = profile
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    if bad:
        raise SystemExit(f"{bad} non-200 responses: the numbers above are not of the routes")


if __name__ == "__main__":
    main()
