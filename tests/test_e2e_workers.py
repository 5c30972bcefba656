"""Enqueued broadcasts run by two real ``db_worker`` processes (django-tasks-db).

The e2e project (tests/e2e_workers_settings.py: the task queue in the project's own database)
posts to a loopback FaultEndpoint served by this test process, which counts every body each
connection id received. A shell enqueues; two ``db_worker`` processes run the coordinator and
the shards; another shell waits with ``Broadcast.wait_result`` (which runs the reaper). The
second test ``kill -9``s the worker holding a shard after its first checkpoint and then only
reads the rows (no waiter runs the reaper): the watcher task in the surviving worker hands the
shard on, and the broadcast finishes with exact totals, every live connection delivered,
duplicates at most one checkpoint interval.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aws_ws_async.testing import FaultEndpoint, FaultPlan
from tests.e2e_harness import ROOT, E2EProject, _pg_params, _postgres

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

CHECKPOINT_EVERY = 100
SHARD_SIZE = 500
LEASE_SECONDS = 3


@dataclass
class Worker:
    worker_id: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def endpoint() -> Iterator[FaultEndpoint]:
    fault = FaultEndpoint(FaultPlan(latency=0.01))
    fault.start_in_thread()
    try:
        yield fault
    finally:
        fault.stop_thread()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, endpoint: FaultEndpoint) -> Iterator[Any]:
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.e2e_workers_settings",
        "E2E_SHARD_SIZE": str(SHARD_SIZE),
        "E2E_CHECKPOINT_EVERY": str(CHECKPOINT_EVERY),
        "E2E_LEASE_SECONDS": str(LEASE_SECONDS),
        "E2E_MAX_CONCURRENCY": "20",
    }
    e2e = E2EProject(
        tmp_path_factory.mktemp("workers"),
        management_endpoint_url=endpoint.url,
        extra_env=env,
    )
    e2e.setup()
    try:
        yield e2e
    finally:
        e2e.close()


def rows(project: E2EProject, sql: str) -> list[tuple[Any, ...]]:
    """Read the project's database directly (no Django start-up per look)."""
    if _postgres():
        import psycopg

        with psycopg.connect(dbname=project.db_name, autocommit=True, **_pg_params()) as conn:
            return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]
    with sqlite3.connect(project.db_name, timeout=20) as conn:
        return list(conn.execute(sql).fetchall())


def _start_workers(
    project: E2EProject, tmp_path: Path, env: dict[str, str] | None = None
) -> list[Worker]:
    """Two ``db_worker`` processes of the project, each in its own process group."""
    started = []
    for n in range(2):
        log = tmp_path / f"worker{n}.log"
        worker_id = f"worker-{n}-{os.getpid()}-{time.time_ns()}"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "django", "db_worker", "--interval", "0.1"),
                    *("--no-startup-delay", "--no-reload", "--worker-id", worker_id),
                ],
                env={**project.env, **(env or {})},
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(Worker(worker_id, process, log))
    return started


def _stop_workers(started: list[Worker]) -> None:
    for worker in started:
        if worker.process.poll() is None:
            os.killpg(worker.process.pid, signal.SIGTERM)
    for worker in started:
        try:
            worker.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(5)


@pytest.fixture
def workers(project: E2EProject, tmp_path: Path) -> Iterator[list[Worker]]:
    """Two ``db_worker`` processes of the project, stopped after the test."""
    started = _start_workers(project, tmp_path)
    try:
        yield started
    finally:
        _stop_workers(started)


def enqueue(project: E2EProject, channel: str, count: int) -> int:
    code = f"""
from aws_ws_async.models import ApiGateway, WebSocketSession
g, _ = ApiGateway.objects.get_or_create(
    api_id="wrk0000001",
    defaults=dict(api_name="Workers", stage_name="prod", api_created=True, deployment_id="d1"),
)
WebSocketSession.objects.bulk_create(
    [WebSocketSession(connection_id=f"{channel}{{i:05d}}=", channel_name="{channel}",
     api_gateway=g) for i in range({count})],
    batch_size=500,
)
print(WebSocketSession.objects.for_channel("{channel}").enqueue_message({{"hi": 1}}).pk)
"""
    return int(project.shell(code).strip().splitlines()[-1])


def wait(project: E2EProject, broadcast_id: int, timeout: float = 60) -> dict[str, Any]:
    code = f"""
import json
from aws_ws_async.models import Broadcast
b = Broadcast.objects.get(pk={broadcast_id}).wait_result(timeout={timeout})
print(json.dumps(dict(status=b.status, delivered=b.delivered, gone=b.gone, failed=b.failed,
    recipients=b.recipients, shards=b.shards_total,
    attempts=[s["attempts"] for s in b.progress()])))
"""
    out = project.shell(code, timeout=timeout + 30)
    return dict(json.loads(out.strip().splitlines()[-1]))


def finished_in_db(project: E2EProject, broadcast_id: int, timeout: float = 60) -> dict[str, Any]:
    """Wait by reading the rows only: nobody outside the workers runs the reaper."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = rows(
            project,
            "SELECT status, delivered, gone, failed, recipients FROM aws_ws_async_broadcast "
            f"WHERE id = {broadcast_id}",
        )
        status, delivered, gone, failed, recipients = found[0]
        if status in ("finished", "failed"):
            attempts = rows(
                project,
                "SELECT attempts FROM aws_ws_async_broadcastshard "
                f"WHERE broadcast_id = {broadcast_id} ORDER BY id",
            )
            return {
                "status": status,
                "delivered": delivered,
                "gone": gone,
                "failed": failed,
                "recipients": recipients,
                "attempts": [n for (n,) in attempts],
            }
        time.sleep(0.2)
    raise AssertionError(f"broadcast {broadcast_id} not finished after {timeout} s")


def _json(value: Any) -> Any:
    """A JSON column: text on SQLite, already decoded by psycopg."""
    return json.loads(value) if isinstance(value, str) else value


def ids(channel: str, count: int) -> list[str]:
    return [f"{channel}{i:05d}=" for i in range(count)]


def shard_workers(project: E2EProject) -> set[str]:
    found = rows(
        project,
        "SELECT worker_ids FROM django_tasks_database_dbtaskresult WHERE task_path LIKE '%shard%'",
    )
    return {
        w for (value,) in found for w in (json.loads(value) if isinstance(value, str) else value)
    }


def test_two_workers_finish_a_broadcast_with_exact_totals(
    project: E2EProject, endpoint: FaultEndpoint, workers: list[Worker]
) -> None:
    channel, count = "alpha", 3000
    gone = set(ids(channel, count)[::150])
    endpoint.plan.gone = set(gone)
    broadcast_id = enqueue(project, channel, count)
    result = wait(project, broadcast_id)
    assert result["status"] == "finished", result
    assert (result["delivered"], result["gone"], result["failed"]) == (count - len(gone), 20, 0)
    assert (result["recipients"], result["shards"]) == (count, count // SHARD_SIZE)
    live = [cid for cid in ids(channel, count) if cid not in gone]
    assert [cid for cid in live if len(endpoint.received[cid]) != 1] == []
    assert {w.worker_id for w in workers} <= shard_workers(project)  # both workers ran shards
    marked = rows(
        project,
        "SELECT connection_id FROM aws_ws_async_websocketsession "
        f"WHERE channel_name = '{channel}' AND connected = false",
    )
    assert {cid for (cid,) in marked} == gone


def test_kill_9_mid_shard_still_delivers_everyone_once_or_within_a_checkpoint(
    project: E2EProject, endpoint: FaultEndpoint, workers: list[Worker]
) -> None:
    channel, count = "kappa", 3000
    endpoint.plan.gone = set()
    endpoint.plan.latency = 0.03  # slow enough that a shard is caught half-way
    broadcast_id = enqueue(project, channel, count)
    victim = None
    deadline = time.monotonic() + 40
    while victim is None and time.monotonic() < deadline:
        running = rows(
            project,
            "SELECT s.id FROM aws_ws_async_broadcastshard s "
            f"WHERE s.broadcast_id = {broadcast_id} AND s.status = 'running' "
            "AND s.done_pk IS NOT NULL",
        )
        if running:
            held = {row[0] for row in running}
            for value, args in rows(
                project,
                "SELECT worker_ids, args_kwargs FROM django_tasks_database_dbtaskresult "
                "WHERE status = 'RUNNING' AND task_path LIKE '%shard%'",
            ):
                worker_ids, arguments = _json(value), _json(args)
                if arguments["args"][0] in held:
                    victim = next(w for w in workers if w.worker_id == worker_ids[-1])
                    break
        time.sleep(0.05)
    assert victim is not None, "no shard was caught after its first checkpoint"
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait(5)
    # No waiter reaps here: the watcher task in the surviving worker hands the shard on.
    result = finished_in_db(project, broadcast_id)
    assert result["status"] == "finished", result
    assert (result["delivered"], result["gone"], result["failed"]) == (count, 0, 0)
    assert max(result["attempts"]) == 2  # the killed shard was picked up again
    received = [len(endpoint.received[cid]) for cid in ids(channel, count)]
    assert min(received) >= 1  # every live connection delivered
    duplicates = sum(n - 1 for n in received)
    assert duplicates <= CHECKPOINT_EVERY, duplicates
    print(f"\nkill -9 mid-shard: {duplicates} duplicate posts (bound {CHECKPOINT_EVERY})")


def busiest_second(starts: list[float]) -> int:
    """The most request starts seen in any one-second window (sliding, from each start)."""
    starts = sorted(starts)
    best, left = 0, 0
    for right, at in enumerate(starts):
        while starts[left] <= at - 1.0:
            left += 1
        best = max(best, right - left + 1)
    return best


def test_two_workers_share_one_rate_budget_in_redis(
    project: E2EProject, endpoint: FaultEndpoint, tmp_path: Path
) -> None:
    """Two real workers, one Redis budget of 400/s: together they stay under it."""
    redis_url = "redis://127.0.0.1:6379/0"
    if subprocess.run(["redis-cli", "-h", "127.0.0.1", "ping"], capture_output=True).returncode:
        pytest.skip("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
    budget, channel, count = 400, "rho", 2000
    env = {
        "E2E_RATE_BUDGET": str(budget),
        "E2E_BUDGET_REDIS": redis_url,
        "E2E_BUDGET_ACCOUNT": f"e2e-{os.getpid()}-{time.time_ns()}",
    }
    endpoint.plan.gone, endpoint.plan.latency = set(), 0.01
    before = len(endpoint.in_flight_log)
    started = _start_workers(project, tmp_path, env)
    try:
        broadcast_id = enqueue(project, channel, count)
        result = wait(project, broadcast_id)
    finally:
        _stop_workers(started)
    assert (result["status"], result["delivered"], result["failed"]) == ("finished", count, 0)
    starts = [at for at, _ in endpoint.in_flight_log[before:]]
    assert len(starts) == count
    peak, duration = busiest_second(starts), starts[-1] - starts[0]
    print(f"\nbudget {budget}/s: busiest second {peak}, mean {count / duration:.0f}/s")
    assert peak <= budget * 1.1, peak  # unbounded, two workers post ~2,000/s here
    assert duration >= (count - budget) / budget * 0.9, duration
    assert {w.worker_id for w in started} <= shard_workers(project)  # both took permits
