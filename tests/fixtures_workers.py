"""What the real-worker e2e tests share: workers started as processes, and reading the rows.

tests/test_e2e_workers.py (django-tasks-db's ``db_worker``), tests/test_e2e_workers_rq.py
(``rqworker``) and tests/test_e2e_workers_admin.py (the admin's actions on a worker) start real
worker processes of the e2e project (tests/e2e_harness.py), enqueue with a Django shell, and
read the outcome straight from the database (no Django start-up per look) or wait with
``Broadcast.wait_result``. The loopback ``@connections`` endpoint is a FaultEndpoint served by
the test process (``worker_endpoint``), which counts every body each connection id received.
"""

from __future__ import annotations

import contextlib
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

CHECKPOINT_EVERY = 100
SHARD_SIZE = 500
LEASE_SECONDS = 3


@dataclass
class Worker:
    worker_id: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def worker_endpoint() -> Iterator[FaultEndpoint]:
    """The ``@connections`` endpoint the workers post to (10 ms per request)."""
    fault = FaultEndpoint(FaultPlan(latency=0.01))
    fault.start_in_thread()
    try:
        yield fault
    finally:
        fault.stop_thread()


def worker_env(settings_module: str, **extra: str) -> dict[str, str]:
    """The e2e project's variables for a worker project: small shards, a short lease."""
    return {
        "DJANGO_SETTINGS_MODULE": settings_module,
        "E2E_SHARD_SIZE": str(SHARD_SIZE),
        "E2E_CHECKPOINT_EVERY": str(CHECKPOINT_EVERY),
        "E2E_LEASE_SECONDS": str(LEASE_SECONDS),
        "E2E_MAX_CONCURRENCY": "20",
        **extra,
    }


def start_db_workers(
    project: E2EProject, tmp_path: Path, env: dict[str, str] | None = None, count: int = 2
) -> list[Worker]:
    """``count`` ``db_worker`` processes of the project, each in its own process group."""
    started = []
    for n in range(count):
        log = tmp_path / f"worker{n}-{time.time_ns()}.log"
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


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process group, SIGKILL what is still there after 10 s."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def redis_up() -> bool:
    ping = subprocess.run(["redis-cli", "-h", "127.0.0.1", "ping"], capture_output=True)
    return ping.returncode == 0


@contextlib.contextmanager
def claimed_redis_db() -> Iterator[int]:
    """A Redis database number (2..15) that no other test run is using, emptied before and after.

    The RQ and Celery e2e tests flush their database: two runs sharing a number (CI runs the
    Python 3.13 leg beside the default one; developers run suites side by side) would drop each
    other's jobs. A number is claimed with ``SET NX`` on a key in database 0, which expires
    after 15 minutes should a run die without releasing it, and is released on exit.
    """
    import redis

    claims = redis.Redis(host="127.0.0.1", port=6379, db=0)
    token = f"{os.getpid()}-{time.time_ns()}"
    try:
        for number in range(2, 16):
            key = f"aws_ws_async:tests:redis-db:{number}"
            if claims.set(key, token, nx=True, ex=900):
                break
        else:
            raise RuntimeError("every Redis database 2..15 is claimed by another test run")
        db = redis.Redis(host="127.0.0.1", port=6379, db=number)
        db.flushdb()
        try:
            yield number
        finally:
            db.flushdb()
            db.close()
            if claims.get(key) == token.encode():
                claims.delete(key)
    finally:
        claims.close()


def rows(project: E2EProject, sql: str) -> list[tuple[Any, ...]]:
    """Read the project's database directly (no Django start-up per look)."""
    if _postgres():
        import psycopg

        with psycopg.connect(dbname=project.db_name, autocommit=True, **_pg_params()) as conn:
            return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]
    with sqlite3.connect(project.db_name, timeout=20) as conn:
        return list(conn.execute(sql).fetchall())


def enqueue(project: E2EProject, channel: str, count: int) -> int:
    code = f"""
from datetime import timedelta
from django.utils import timezone
from aws_ws_async.models import ApiGateway, WebSocketSession
# Connected an hour ago: a 410 to a session younger than gone_grace_seconds is not marked gone.
since = timezone.now() - timedelta(hours=1)
g, _ = ApiGateway.objects.get_or_create(
    api_id="wrk0000001",
    defaults=dict(api_name="Workers", stage_name="prod", api_created=True, deployment_id="d1"),
)
WebSocketSession.objects.bulk_create(
    [WebSocketSession(connection_id=f"{channel}{{i:05d}}=", channel_name="{channel}",
     api_gateway=g, connected_at=since) for i in range({count})],
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


def json_column(value: Any) -> Any:
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


def busiest_second(starts: list[float]) -> int:
    """The most request starts seen in any one-second window (sliding, from each start)."""
    starts = sorted(starts)
    best, left = 0, 0
    for right, at in enumerate(starts):
        while starts[left] <= at - 1.0:
            left += 1
        best = max(best, right - left + 1)
    return best
