"""Broadcast benchmark: our ``asend_message`` against the predecessor and the raw floors.

Run ``python -m benchmarks.broadcast`` (``--help`` for flags). A loopback ``@connections``
endpoint answering after ``--latency-ms`` runs in a separate process (so its CPU is not
counted), the database is filled with ``--recipients`` sessions, and the scenarios run
interleaved, ``--repeat`` times each; the table shows medians.

Scenarios:

* ``asend_message``: ``WebSocketSession.objects.for_channel(...).asend_message(...)``, from the
  database, on one long-lived event loop (its cached client warmed up first, as in a server).
* ``asend_message_telemetry``: the same with traces and metrics on: an OpenTelemetry SDK
  ``TracerProvider`` with a ``BatchSpanProcessor`` (in-memory exporter) and a private
  Prometheus registry (the overhead of :mod:`aws_ws_async.telemetry`, per-post histogram and
  1 % sampled attempt spans included; target CPU per message <= 1.05x ``asend_message``).
* ``asend_message_standard``: the same, with ``AWS_WS_ASYNC["fast_signing"] = False``: every post
  goes through ``client.post_to_connection`` (what the fast path saves, measured side by side).
* ``predecessor_sequential``: a boto3 loop, one post after another (predecessor up to 4.0).
* ``predecessor_threads``: boto3 with ``ThreadPoolExecutor(10)`` (predecessor 4.1).
* ``aiobotocore_raw``: ``client.post_to_connection`` fan-out under a semaphore, ids in memory.
* ``signed_aiohttp``: aiohttp posts signed with botocore's ``SigV4Auth`` (the floor).

``--telemetry`` measures only telemetry on vs off, interleaved: ``asend_message``,
``asend_message_telemetry`` (1 % of the attempts sampled as spans, every attempt in the latency
histogram) and ``asend_message_every_span`` (every attempt a span: the cost of full per-post
tracing, no target), then ``session_loop`` (``--loop-sessions`` awaited
``session.asend_message()`` calls, one span and one metrics update per send: the worst case)
and ``session_loop_telemetry``; it prints CPU per message with telemetry / without, both as the
ratio of the medians and as the median of the per-repeat ratios (each pair ran back to back),
and writes every repeat to the JSON. Then, because a shared machine's load drifts by more than
5 % between whole runs, it toggles telemetry every block *inside one loop* (``--alt-blocks``
blocks of ``--alt-block`` single sends, then of broadcasts to ten times as many) and prints the
CPU per message of the "off" and "on" blocks added up (:mod:`benchmarks._telemetry`), once more
for single sends with the SDK sampling 10 % of the traces (``ParentBased(TraceIdRatioBased)``,
the usual production sampler; metrics still count every send). "Off" is always no telemetry at
all: no tracer provider, no metrics.

``--sync`` measures the sync twins instead (``--recipients`` default 1,000, ``--latency-ms``
default 0, so the cost measured is ours, not the endpoint's):

* ``asend_message``: one async broadcast to the N connections (the yardstick).
* ``send_message_loop``: N calls of ``session.send_message()`` in a loop, from plain sync code,
  on sessions loaded with ``select_related("api_gateway")`` (issue 9.13: target <= 3x).
* ``send_message_loop_plain``: the same on sessions loaded without ``select_related`` (the
  first send loads and caches the gateway; later ones reuse it).
* ``send_message``: one sync QuerySet broadcast to the N connections.
* ``asend_message_2gw`` / ``send_message_2gw``: the N connections split over two gateways
  with two endpoints; the sync twin sends both gateways concurrently.

The endpoint (:mod:`aws_ws_async.testing.latency_endpoint`) is a bare ``asyncio.Protocol``
HTTP server answering from a timer, so that on a small machine the endpoint's own CPU does not
cap the fast scenarios.

The two predecessor baselines are too slow to post to every recipient in reasonable time; they
post to a fixed sample (``--sample-sequential``, ``--sample-threads``) and are reported as rates.
CPU is this process's CPU time (all threads) per message; peak RSS is the process's high-water
mark during the scenario (reset before each one through ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks._postgres import ensure_postgres_database
from benchmarks._telemetry import POST_SPAN_RATE, alternating, hook_costs, with_telemetry
from benchmarks._telemetry import off as telemetry_off

CHANNEL = "bench"
API_ID = "bench00001"
PAYLOAD = {"type": "broadcast", "text": "x" * 200}
SCENARIOS = (
    "asend_message",
    "asend_message_telemetry",
    "asend_message_standard",
    "predecessor_sequential",
    "predecessor_threads",
    "aiobotocore_raw",
    "signed_aiohttp",
)


# --- measurement helpers --------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    return _status_kb("VmHWM") / 1024


@dataclass
class Run:
    messages: int
    wall: float
    cpu: float
    peak_rss: float

    @property
    def rate(self) -> float:
        return self.messages / self.wall

    @property
    def cpu_us(self) -> float:
        return self.cpu / self.messages * 1e6


def measure(messages: int, fn: Callable[[], Any]) -> Run:
    reset_peak_rss()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    delivered = fn()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if delivered != messages:
        raise RuntimeError(f"expected {messages} deliveries, got {delivered}")
    return Run(messages, wall, cpu, peak_rss_mb())


# --- environment ----------------------------------------------------------------------------


def start_endpoint(latency_ms: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from aws_ws_async.testing.latency_endpoint import main; main()",
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    port = process.stdout.readline().strip()
    if not port.isdigit():
        process.kill()
        raise RuntimeError("the loopback endpoint did not start")
    return process, f"http://127.0.0.1:{port}"


def setup_django(db: str, endpoint: str, workdir: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    os.environ["BENCH_DB"] = db
    os.environ["BENCH_ENDPOINT_URL"] = endpoint
    os.environ.setdefault("BENCH_SQLITE_PATH", str(Path(workdir) / "bench.sqlite3"))
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    if db == "postgres":
        ensure_postgres_database("aws_ws_async_bench")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def fill(recipients: int) -> list[str]:
    from aws_ws_async.models import ApiGateway, WebSocketSession

    WebSocketSession.objects.all().delete()
    ApiGateway.objects.all().delete()
    gateway = ApiGateway.objects.create(
        api_name="bench", api_id=API_ID, stage_name="bench", api_created=True, deployment_id="d"
    )
    ids = [f"bench{i:07d}AbC=" for i in range(recipients)]
    batch = 5000
    for start in range(0, recipients, batch):
        WebSocketSession.objects.bulk_create(
            WebSocketSession(connection_id=cid, channel_name=CHANNEL, api_gateway=gateway)
            for cid in ids[start : start + batch]
        )
    return ids


def payload_bytes() -> bytes:
    return json.dumps(PAYLOAD, separators=(",", ":")).encode()


# --- scenarios ------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, endpoint: str, ids: list[str]) -> None:
        self.args = args
        self.endpoint = endpoint
        self.ids = ids
        self.body = payload_bytes()
        self.runner = asyncio.Runner()
        self._boto3_client: Any = None
        self._boto3_pool_client: Any = None
        self._aio_client: Any = None
        self._aio_ctx: Any = None
        self._http: Any = None

    # asend_message -------------------------------------------------------------------------

    def asend_message(self) -> Run:
        from aws_ws_async import aws
        from aws_ws_async.models import WebSocketSession

        async def warm() -> None:
            client = await aws.get_management_client(
                self.endpoint, max_pool_connections=max(100, self.args.concurrency)
            )
            await client.post_to_connection(ConnectionId="warmup", Data=b"1")

        async def run() -> int:
            report = await WebSocketSession.objects.for_channel(CHANNEL).asend_message(
                PAYLOAD, concurrency=self.args.concurrency
            )
            if report.failed:
                raise RuntimeError(report.summary())
            return report.delivered_count

        self.runner.run(warm())
        return measure(len(self.ids), lambda: self.runner.run(run()))

    def asend_message_telemetry(self) -> Run:
        return with_telemetry(self.asend_message, "aws_ws_async.broadcast")

    def asend_message_every_span(self) -> Run:
        """The worst case of per-post tracing: every attempt a span (``post_span_rate=1``)."""
        return with_telemetry(self.asend_message, "aws_ws_async.post_attempt", rate=1.0)

    def session_loop(self) -> Run:
        """``await session.asend_message()`` one session after another (a span per send)."""
        from aws_ws_async.models import WebSocketSession

        sessions = list(
            WebSocketSession.objects.select_related("api_gateway").filter(
                connection_id__in=self.ids[: self.args.loop_sessions]
            )
        )

        async def run() -> int:
            for session in sessions:
                report = await session.asend_message(PAYLOAD)
                if report.failed:
                    raise RuntimeError(report.summary())
            return len(sessions)

        return measure(len(sessions), lambda: self.runner.run(run()))

    def session_loop_telemetry(self) -> Run:
        return with_telemetry(self.session_loop, "aws_ws_async.session_send")

    def alternating(self) -> dict[str, Any]:
        """Telemetry toggled every block inside one loop (see :mod:`benchmarks._telemetry`):
        blocks of ``--alt-block`` single sends, and broadcasts to ``10 * --alt-block``."""
        from aws_ws_async.models import WebSocketSession

        size = self.args.alt_block
        sessions = list(
            WebSocketSession.objects.select_related("api_gateway").filter(
                connection_id__in=self.ids[:size]
            )
        )
        first = WebSocketSession.objects.order_by("pk").values_list("pk", flat=True)[0]
        audience = WebSocketSession.objects.filter(pk__lt=first + 10 * size)

        async def sends() -> int:
            for session in sessions:
                report = await session.asend_message(PAYLOAD)
                if report.failed:
                    raise RuntimeError(report.summary())
            return len(sessions)

        async def broadcast() -> int:
            report = await audience.asend_message(PAYLOAD, concurrency=self.args.concurrency)
            if report.failed:
                raise RuntimeError(report.summary())
            return report.delivered_count

        blocks = self.args.alt_blocks
        return {
            "session_loop": alternating(
                lambda: self.runner.run(sends()), blocks, "aws_ws_async.session_send"
            ),
            "asend_message": alternating(
                lambda: self.runner.run(broadcast()), blocks, "aws_ws_async.broadcast"
            ),
            # the SDK's ParentBased(TraceIdRatioBased(0.1)): a chat's usual production setting
            "session_loop_sampled_10pct": alternating(
                lambda: self.runner.run(sends()), blocks, "aws_ws_async.session_send", 0.1
            ),
        }

    def asend_message_standard(self) -> Run:
        from django.conf import settings
        from django.test.utils import override_settings

        standard = {**getattr(settings, "AWS_WS_ASYNC", {}), "fast_signing": False}
        with override_settings(AWS_WS_ASYNC=standard):
            return self.asend_message()

    # boto3 baselines -----------------------------------------------------------------------

    def _boto3(self, pool: int) -> Any:
        import boto3
        from botocore.config import Config

        # The predecessor's broadcast client: 5 s connect, 10 s read, 3 attempts (standard).
        config = Config(
            connect_timeout=5,
            read_timeout=10,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=pool,
        )
        client = boto3.session.Session(
            aws_access_key_id="benchmark",
            aws_secret_access_key="benchmark",
            region_name="us-east-1",
        ).client("apigatewaymanagementapi", endpoint_url=self.endpoint, config=config)
        client.post_to_connection(ConnectionId="warmup", Data=b"1")
        return client

    def _sample_ids(self, size: int) -> list[str]:
        from aws_ws_async.models import WebSocketSession

        # The predecessor loads every recipient in one query; here only the sample's rows.
        return list(
            WebSocketSession.objects.filter(channel_name=CHANNEL, connected=True)
            .order_by("pk")
            .values_list("connection_id", flat=True)[:size]
        )

    def predecessor_sequential(self) -> Run:
        if self._boto3_client is None:
            self._boto3_client = self._boto3(10)
        client = self._boto3_client
        size = min(self.args.sample_sequential, len(self.ids))

        def run() -> int:
            sent = 0
            for cid in self._sample_ids(size):
                client.post_to_connection(ConnectionId=cid, Data=self.body)
                sent += 1
            return sent

        return measure(size, run)

    def predecessor_threads(self) -> Run:
        if self._boto3_pool_client is None:
            self._boto3_pool_client = self._boto3(10)
        client = self._boto3_pool_client
        size = min(self.args.sample_threads, len(self.ids))

        def post(cid: str) -> bool:
            client.post_to_connection(ConnectionId=cid, Data=self.body)
            return True

        def run() -> int:
            with ThreadPoolExecutor(10) as pool:
                return sum(pool.map(post, self._sample_ids(size)))

        return measure(size, run)

    # aiobotocore_raw -----------------------------------------------------------------------

    def aiobotocore_raw(self) -> Run:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        concurrency = self.args.concurrency

        async def open_client() -> None:
            session = get_session()
            session.set_credentials("benchmark", "benchmark")
            self._aio_ctx = session.create_client(
                "apigatewaymanagementapi",
                region_name="us-east-1",
                endpoint_url=self.endpoint,
                config=AioConfig(max_pool_connections=concurrency),
            )
            self._aio_client = await self._aio_ctx.__aenter__()
            await self._aio_client.post_to_connection(ConnectionId="warmup", Data=b"1")

        async def run() -> int:
            client = self._aio_client
            semaphore = asyncio.Semaphore(concurrency)

            async def post(cid: str) -> None:
                async with semaphore:
                    await client.post_to_connection(ConnectionId=cid, Data=self.body)

            await asyncio.gather(*(post(cid) for cid in self.ids))
            return len(self.ids)

        if self._aio_client is None:
            self.runner.run(open_client())
        return measure(len(self.ids), lambda: self.runner.run(run()))

    # signed_aiohttp ------------------------------------------------------------------------

    def signed_aiohttp(self) -> Run:
        import aiohttp
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        concurrency = self.args.concurrency
        auth = SigV4Auth(Credentials("benchmark", "benchmark"), "execute-api", "us-east-1")
        prefix = f"{self.endpoint}/@connections/"

        async def open_session() -> None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=12)
            )

        async def run() -> int:
            http = self._http
            semaphore = asyncio.Semaphore(concurrency)

            async def post(cid: str) -> None:
                async with semaphore:
                    request = AWSRequest("POST", prefix + quote(cid, safe=""), data=self.body)
                    auth.add_auth(request)
                    async with http.post(
                        request.url, data=self.body, headers=dict(request.headers.items())
                    ) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"status {response.status}")

            await asyncio.gather(*(post(cid) for cid in self.ids))
            return len(self.ids)

        if self._http is None:
            self.runner.run(open_session())
        return measure(len(self.ids), lambda: self.runner.run(run()))

    def close(self) -> None:
        from aws_ws_async import aws

        async def close() -> None:
            if self._aio_ctx is not None:
                await self._aio_ctx.__aexit__(None, None, None)
            if self._http is not None:
                await self._http.close()
            await aws.aclose_clients()

        self.runner.run(close())
        self.runner.close()


# --- reporting ------------------------------------------------------------------------------


def summarise(runs: dict[str, list[Run]]) -> dict[str, dict[str, float]]:
    return {
        name: {
            "msgs_per_s": round(statistics.median(r.rate for r in rs), 1),
            "cpu_us_per_msg": round(statistics.median(r.cpu_us for r in rs), 1),
            "peak_rss_mb": round(max(r.peak_rss for r in rs), 1),
        }
        for name, rs in runs.items()
    }


def ratios(results: dict[str, dict[str, float]]) -> dict[str, float]:
    ours = results["asend_message"]
    return {
        "vs_predecessor_threads": round(
            ours["msgs_per_s"] / results["predecessor_threads"]["msgs_per_s"], 2
        ),
        "vs_aiobotocore_raw": round(
            ours["msgs_per_s"] / results["aiobotocore_raw"]["msgs_per_s"], 2
        ),
        "cpu_vs_signed_aiohttp": round(
            ours["cpu_us_per_msg"] / results["signed_aiohttp"]["cpu_us_per_msg"], 2
        ),
        "telemetry_cpu_vs_off": round(
            results["asend_message_telemetry"]["cpu_us_per_msg"] / ours["cpu_us_per_msg"], 3
        ),
    }


def print_table(
    args: argparse.Namespace, results: dict[str, dict[str, float]], runs: dict[str, list[Run]]
) -> None:
    notes = {
        "predecessor_sequential": f"sampled: {runs['predecessor_sequential'][0].messages} posts",
        "predecessor_threads": f"sampled: {runs['predecessor_threads'][0].messages} posts",
    }
    print(
        f"\nbroadcast to {args.recipients} recipients, {args.latency_ms:g} ms latency, "
        f"concurrency {args.concurrency}, {args.db}, median of {args.repeat}"
    )
    header = f"{'scenario':<24}{'msgs/s':>10}{'CPU us/msg':>12}{'peak RSS MB':>13}  note"
    print(header)
    print("-" * len(header))
    for name in SCENARIOS:
        r = results[name]
        print(
            f"{name:<24}{r['msgs_per_s']:>10.0f}{r['cpu_us_per_msg']:>12.0f}"
            f"{r['peak_rss_mb']:>13.1f}  {notes.get(name, '')}"
        )
    rat = ratios(results)
    print(
        f"\nasend_message vs predecessor_threads: {rat['vs_predecessor_threads']}x (target >= 5)"
        f"\nasend_message vs aiobotocore_raw:     {rat['vs_aiobotocore_raw']}x (target >= 0.9)"
        f"\nCPU vs signed_aiohttp:                {rat['cpu_vs_signed_aiohttp']}x (target <= 1.25)"
        f"\nCPU with telemetry on vs off:         {rat['telemetry_cpu_vs_off']}x (target <= 1.05)"
    )


def machine() -> dict[str, Any]:
    import aiobotocore
    import botocore
    import django

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "django": django.get_version(),
        "aiobotocore": aiobotocore.__version__,
        "botocore": botocore.__version__,
    }


# --- modes ----------------------------------------------------------------------------------


TELEMETRY_SCENARIOS = (
    "asend_message",
    "asend_message_telemetry",
    "asend_message_every_span",
    "session_loop",
    "session_loop_telemetry",
)
#: Ratio name -> (scenario with telemetry off, the same with it on).
TELEMETRY_PAIRS = {
    "asend_message": ("asend_message", "asend_message_telemetry"),
    "asend_message_every_span": ("asend_message", "asend_message_every_span"),
    "session_loop": ("session_loop", "session_loop_telemetry"),
}


def interleaved(
    args: argparse.Namespace, endpoint: str, names: tuple[str, ...], *, alternate: bool = False
) -> tuple[dict[str, list[Run]], dict[str, Any]]:
    """Run every scenario of ``names`` once per repeat, in turn (so load drifts hit all alike);
    with ``alternate``, then :meth:`Bench.alternating` on the same database."""
    telemetry_off()  # the baseline has no telemetry at all (no metrics in the default registry)
    bench = Bench(args, endpoint, fill(args.recipients))
    runs: dict[str, list[Run]] = {name: [] for name in names}
    alternated: dict[str, Any] = {}
    try:
        for repeat in range(args.repeat):
            for name in names:
                run = getattr(bench, name)()
                runs[name].append(run)
                print(
                    f"  repeat {repeat + 1}/{args.repeat} {name:<24} {run.rate:8.0f} msgs/s "
                    f"{run.cpu_us:6.0f} us CPU/msg",
                    file=sys.stderr,
                )
        if alternate:
            alternated = bench.alternating()
    finally:
        bench.close()
    return runs, alternated


def run_alternating(args: argparse.Namespace, endpoint: str) -> dict[str, Any]:
    """``--telemetry --alt-only``: only the toggled loops and the hooks' own CPU."""
    telemetry_off()
    bench = Bench(args, endpoint, fill(args.recipients))
    try:
        alternated = bench.alternating()
    finally:
        bench.close()
    costs = hook_costs()
    for name, alt in alternated.items():
        print(
            f"CPU per message, {name}: {alt['cpu_us_per_msg_off']} us off, "
            f"{alt['cpu_us_per_msg_on']} us on: {alt['ratio']}x (target <= 1.05)"
        )
    print(f"the hooks themselves (us of CPU, best of 15 x 2000 calls): {costs}")
    return {
        "params": {**params(args), "machine": machine(), "post_span_rate": POST_SPAN_RATE},
        "hook_costs_us": costs,
        "alternating": alternated,
    }


def run_telemetry(args: argparse.Namespace, endpoint: str) -> dict[str, Any]:
    """``--telemetry``: telemetry on vs off, a broadcast and a loop of single sends, interleaved."""
    if args.alt_only:
        return run_alternating(args, endpoint)
    runs, alternated = interleaved(args, endpoint, TELEMETRY_SCENARIOS, alternate=True)
    results = summarise(runs)
    rat, paired = {}, {}
    for key, (off, on) in TELEMETRY_PAIRS.items():
        rat[key] = round(results[on]["cpu_us_per_msg"] / results[off]["cpu_us_per_msg"], 3)
        # repeat by repeat (each pair ran back to back), then the median: robust to load drift
        per_repeat = [b.cpu_us / a.cpu_us for a, b in zip(runs[off], runs[on], strict=True)]
        paired[key] = round(statistics.median(per_repeat), 3)
    print(f"\ntelemetry on vs off, {args.recipients} recipients, median of {args.repeat}")
    for name in TELEMETRY_SCENARIOS:
        r = results[name]
        print(f"{name:<26}{r['msgs_per_s']:>10.0f} msgs/s{r['cpu_us_per_msg']:>8.0f} us CPU/msg")
    for name, ratio in rat.items():
        target = "(every attempt a span; no target)" if "every" in name else "(target <= 1.05)"
        print(f"CPU per message, {name}: {ratio}x on/off, paired {paired[name]}x {target}")
    print(f"\ntelemetry toggled every block inside one loop ({args.alt_blocks} blocks):")
    for name, alt in alternated.items():
        print(
            f"CPU per message, {name}: {alt['cpu_us_per_msg_off']} us off, "
            f"{alt['cpu_us_per_msg_on']} us on: {alt['ratio']}x (target <= 1.05)"
        )
    costs = hook_costs()
    print("\nthe hooks themselves, best of 15 x 2000 calls (us of CPU):")
    print(
        f"single send: {costs['single_send_off_us']} off, {costs['single_send_on_us']} on "
        f"(a bare SDK span: {costs['bare_sdk_span_us']}; "
        f"{costs['single_send_sampled_10pct_us']} with 10 % of traces sampled); "
        "one attempt in a broadcast: "
        f"{costs['attempt_off_us']} off, {costs['attempt_on_us']} on"
    )
    return {
        "params": {**params(args), "machine": machine(), "post_span_rate": POST_SPAN_RATE},
        "hook_costs_us": costs,
        "results": results,
        "ratios": rat,
        "paired_ratios": paired,
        "alternating": alternated,
        "runs": {
            name: [
                {"msgs_per_s": round(r.rate, 1), "cpu_us_per_msg": round(r.cpu_us, 1)} for r in rs
            ]
            for name, rs in runs.items()
        },
    }


def run_comparison(args: argparse.Namespace, endpoint: str) -> dict[str, Any]:
    runs, _ = interleaved(args, endpoint, SCENARIOS)
    results = summarise(runs)
    print_table(args, results, runs)
    return {
        "params": {
            **params(args),
            "sampled_posts": {
                "predecessor_sequential": runs["predecessor_sequential"][0].messages,
                "predecessor_threads": runs["predecessor_threads"][0].messages,
            },
            "machine": machine(),
        },
        "results": results,
        "ratios": ratios(results),
    }


def run_memory(args: argparse.Namespace, endpoint: str) -> dict[str, Any]:
    from aws_ws_async import aws
    from aws_ws_async.models import WebSocketSession

    recipients = args.recipients if args.recipients_given else 100_000
    fill(recipients)
    runner = asyncio.Runner()

    async def warm() -> None:
        client = await aws.get_management_client(
            endpoint, max_pool_connections=max(100, args.concurrency)
        )
        await client.post_to_connection(ConnectionId="warmup", Data=b"1")

    async def run() -> int:
        report = await WebSocketSession.objects.for_channel(CHANNEL).asend_message(
            PAYLOAD, concurrency=args.concurrency
        )
        return report.delivered_count

    runner.run(warm())
    before = rss_mb()
    measured = measure(recipients, lambda: runner.run(run()))
    runner.run(aws.aclose_clients())
    runner.close()
    growth = measured.peak_rss - before
    print(
        f"\nmemory: broadcast to {recipients} sessions at {measured.rate:.0f} msgs/s; "
        f"RSS before {before:.1f} MB, peak {measured.peak_rss:.1f} MB, "
        f"growth {growth:.1f} MB (target <= 64 MB)"
    )
    return {
        "params": {**params(args), "recipients": recipients, "machine": machine()},
        "results": {
            "asend_message": {
                "msgs_per_s": round(measured.rate, 1),
                "cpu_us_per_msg": round(measured.cpu_us, 1),
                "peak_rss_mb": round(measured.peak_rss, 1),
            }
        },
        "memory": {
            "recipients": recipients,
            "msgs_per_s": round(measured.rate, 1),
            "cpu_us_per_msg": round(measured.cpu_us, 1),
            "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(measured.peak_rss, 1),
            "peak_rss_growth_mb": round(growth, 1),
        },
    }


SYNC_SCENARIOS = (
    "asend_message",
    "send_message_loop",
    "send_message_loop_plain",
    "send_message",
    "asend_message_2gw",
    "send_message_2gw",
)


def two_gateways(ids: list[str]) -> None:
    """Move every other session to a second gateway (its own api_id, so its own endpoint)."""
    from aws_ws_async.models import ApiGateway, WebSocketSession

    second = ApiGateway.objects.create(
        api_name="bench2",
        api_id="bench00002",
        stage_name="bench",
        api_created=True,
        deployment_id="d",
    )
    WebSocketSession.objects.filter(connection_id__in=ids[1::2]).update(api_gateway=second)


def sync_scenarios(args: argparse.Namespace, endpoint: str) -> dict[str, Callable[[], Run]]:
    """The ``--sync`` scenarios; every one posts to all N connections once."""
    from django.conf import settings
    from django.test.utils import override_settings

    from aws_ws_async import aws
    from aws_ws_async.models import WebSocketSession

    n = args.recipients
    runner = asyncio.Runner()
    per_api = {**settings.AWS_WS_ASYNC, "management_endpoint_url": endpoint + "/{api_id}"}

    def warm_async() -> None:
        async def warm() -> None:
            client = await aws.get_management_client(
                endpoint, max_pool_connections=max(100, args.concurrency)
            )
            await client.post_to_connection(ConnectionId="warmup", Data=b"1")

        runner.run(warm())

    def abroadcast() -> int:
        async def run() -> int:
            report = await WebSocketSession.objects.for_channel(CHANNEL).asend_message(
                PAYLOAD, concurrency=args.concurrency
            )
            return report.delivered_count

        return runner.run(run())

    def loop(select: bool) -> Callable[[], int]:
        def run() -> int:
            rows = WebSocketSession.objects.for_channel(CHANNEL).order_by("pk")
            sessions = list(rows.select_related("api_gateway") if select else rows)
            return sum(s.send_message(PAYLOAD).delivered_count for s in sessions)

        return run

    def broadcast() -> int:
        report = WebSocketSession.objects.for_channel(CHANNEL).send_message(
            PAYLOAD, concurrency=args.concurrency
        )
        return report.delivered_count

    def measured(fn: Callable[[], int], *, two: bool = False) -> Callable[[], Run]:
        def scenario() -> Run:
            if two:
                with override_settings(AWS_WS_ASYNC=per_api):
                    return measure(n, fn)
            return measure(n, fn)

        return scenario

    warm_async()
    if not args.no_loop:
        loop(True)()  # warm the portal's client too
    return {
        "asend_message": measured(abroadcast),
        "send_message_loop": measured(loop(True)),
        "send_message_loop_plain": measured(loop(False)),
        "send_message": measured(broadcast),
        "asend_message_2gw": measured(abroadcast, two=True),
        "send_message_2gw": measured(broadcast, two=True),
    }


def run_sync(args: argparse.Namespace, endpoint: str) -> dict[str, Any]:
    ids = fill(args.recipients)
    two_gateways(ids)
    scenarios = sync_scenarios(args, endpoint)
    names = [n for n in SYNC_SCENARIOS if not (args.no_loop and "loop" in n)]
    runs: dict[str, list[Run]] = {name: [] for name in names}
    for repeat in range(args.repeat):
        for name in names:
            run = scenarios[name]()
            runs[name].append(run)
            print(
                f"  repeat {repeat + 1}/{args.repeat} {name:<24} {run.wall:7.3f} s "
                f"{run.cpu_us:6.0f} us CPU/msg",
                file=sys.stderr,
            )
    results = {
        name: {
            "seconds": round(statistics.median(r.wall for r in rs), 4),
            "msgs_per_s": round(statistics.median(r.rate for r in rs), 1),
            "cpu_us_per_msg": round(statistics.median(r.cpu_us for r in rs), 1),
        }
        for name, rs in runs.items()
    }
    base = results["asend_message"]

    def ratio(name: str, key: str, against: dict[str, float] = base) -> float:
        return round(results[name][key] / against[key], 2)

    sync_ratios = (
        {}
        if args.no_loop
        else {
            "loop_vs_async_wall": ratio("send_message_loop", "seconds"),
            "loop_vs_async_cpu": ratio("send_message_loop", "cpu_us_per_msg"),
            "loop_plain_vs_async_wall": ratio("send_message_loop_plain", "seconds"),
        }
    )
    sync_ratios |= {
        "sync_broadcast_vs_async_wall": ratio("send_message", "seconds"),
        "sync_2gw_vs_async_2gw_wall": ratio(
            "send_message_2gw", "seconds", results["asend_message_2gw"]
        ),
    }
    print(
        f"\nsync twins: {args.recipients} connections (half on a second gateway for *_2gw), "
        f"{args.latency_ms:g} ms latency, concurrency {args.concurrency}, {args.db}, "
        f"median of {args.repeat}"
    )
    header = f"{'scenario':<26}{'seconds':>10}{'msgs/s':>10}{'CPU us/msg':>12}"
    print(header)
    print("-" * len(header))
    for name in names:
        r = results[name]
        print(
            f"{name:<26}{r['seconds']:>10.3f}{r['msgs_per_s']:>10.0f}{r['cpu_us_per_msg']:>12.0f}"
        )
    print()
    for key, value in sync_ratios.items():
        print(f"{key:<32}{value:>6}x")
    if not args.no_loop:
        print("(target: loop_vs_async_wall <= 3)")
    return {
        "params": {**params(args), "machine": machine()},
        "results": results,
        "ratios": sync_ratios,
    }


def params(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "recipients": args.recipients,
        "latency_ms": args.latency_ms,
        "repeat": args.repeat,
        "concurrency": args.concurrency,
        "db": args.db,
        "sample_sequential": args.sample_sequential,
        "sample_threads": args.sample_threads,
        "payload_bytes": len(payload_bytes()),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.broadcast", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--recipients", type=int, default=None, help="sessions (default 10000)")
    parser.add_argument(
        "--latency-ms", type=float, default=None, help="endpoint latency (20; --sync: 0)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="repeats per scenario (>= 3)")
    parser.add_argument("--concurrency", type=int, default=100, help="posts in flight")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--json", type=Path, default=None, help="write results as JSON here")
    parser.add_argument(
        "--memory", action="store_true", help="only measure peak RSS growth for 100,000 sessions"
    )
    parser.add_argument(
        "--sync", action="store_true", help="measure the sync twins (see the module docs)"
    )
    parser.add_argument(
        "--telemetry",
        action="store_true",
        help="only telemetry on vs off: a broadcast and --loop-sessions single sends",
    )
    parser.add_argument("--loop-sessions", type=int, default=500, help="--telemetry: sends")
    parser.add_argument(
        "--alt-blocks", type=int, default=40, help="--telemetry: blocks of the toggled loop"
    )
    parser.add_argument(
        "--alt-block", type=int, default=25, help="--telemetry: single sends per toggled block"
    )
    parser.add_argument(
        "--alt-only", action="store_true", help="--telemetry: only the toggled loops"
    )
    parser.add_argument(
        "--no-loop", action="store_true", help="--sync: skip the one-by-one loop scenarios"
    )
    parser.add_argument("--sample-sequential", type=int, default=100)
    parser.add_argument("--sample-threads", type=int, default=2000)
    args = parser.parse_args(argv)
    args.recipients_given = args.recipients is not None
    if args.recipients is None:
        args.recipients = 1_000 if args.sync else 10_000
    if args.latency_ms is None:
        args.latency_ms = 0.0 if args.sync else 20.0
    if args.recipients < 1 or args.concurrency < 1 or args.repeat < 1:
        parser.error("--recipients, --concurrency and --repeat must be positive")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    process, endpoint = start_endpoint(args.latency_ms)
    try:
        with tempfile.TemporaryDirectory(prefix="aws_ws_async_bench_") as workdir:
            setup_django(args.db, endpoint, workdir)
            if args.memory:
                output = run_memory(args, endpoint)
            elif args.sync:
                output = run_sync(args, endpoint)
            elif args.telemetry:
                output = run_telemetry(args, endpoint)
            else:
                output = run_comparison(args, endpoint)
    finally:
        process.terminate()
        process.wait(10)
    if args.json is not None:
        args.json.write_text(json.dumps(output, indent=2) + "\n")
        print(f"\nJSON written to {args.json}")


if __name__ == "__main__":
    main()
