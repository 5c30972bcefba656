"""Enqueued broadcasts run by two real Celery workers (django-tasks-fennel, Redis as broker).

The third backend, the same scenario as tests/test_e2e_workers.py: exact totals with two
workers, and ``kill -9`` of the worker running a shard after its first checkpoint (its process
group: the main process and its prefork child). Nobody waits after the kill: the rows are only
read, and the surviving worker, lingering on the broadcast after its own shards, hands the
dead worker's shard on. Celery would redeliver the unacknowledged message only after the Redis
transport's visibility timeout (an hour by default), so it is not what resumes the shard.
Each run claims a Redis database number of its own (fixtures_workers.claimed_redis_db), so
runs side by side never share a queue.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aws_ws_async.testing import FaultEndpoint
from tests.e2e_harness import ROOT, E2EProject, _postgres
from tests.fixtures_workers import (
    CHECKPOINT_EVERY,
    SHARD_SIZE,
    claimed_redis_db,
    enqueue,
    finished_in_db,
    ids,
    redis_up,
    rows,
    stop_workers,
    wait,
    worker_env,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(150),
    pytest.mark.skipif(
        not _postgres(),
        reason="PostgreSQL only (CI time); the db_worker and RQ e2e run on SQLite too",
    ),
]


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    if importlib.util.find_spec("django_tasks_fennel") is None:
        pytest.skip("django-tasks-fennel is not installed (pip install 'aws-ws-async[celery]')")
    if not redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
    with claimed_redis_db() as number:  # its own broker database, whatever else runs
        yield f"redis://127.0.0.1:6379/{number}"


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, worker_endpoint: FaultEndpoint, broker: str
) -> Iterator[Any]:
    env = worker_env("tests.e2e_workers_celery_settings", E2E_CELERY_BROKER=broker)
    e2e = E2EProject(
        tmp_path_factory.mktemp("celery"),
        management_endpoint_url=worker_endpoint.url,
        extra_env=env,
    )
    e2e.setup()
    try:
        yield e2e
    finally:
        e2e.close()


@pytest.fixture
def workers(project: E2EProject, tmp_path: Path) -> Iterator[list[tuple[Any, Path]]]:
    """Two ``celery worker`` processes, one task at a time each, each in its own group."""
    started = []
    for n in range(2):
        log = tmp_path / f"celery-{n}-{time.time_ns()}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "celery", "-A", "django_tasks_fennel.app"),
                    *("worker", "-l", "info", "-c", "1", "-Q", "default", "-n", f"w{n}@e2e"),
                ],
                env=project.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the worker and its prefork child in one group
            )
        started.append((process, log))
    try:
        yield started
    finally:
        stop_workers([process for process, _ in started])


def _mid_shard(log: Path) -> bool:
    """The worker's last shard line says it started a shard and not that it finished one."""
    lines = [x for x in log.read_text(errors="replace").splitlines() if "path=" in x]
    shard = [x for x in lines if "run_broadcast_shard" in x]
    return bool(shard) and lines[-1] == shard[-1] and "state=RUNNING" in shard[-1]


def test_two_celery_workers_finish_a_broadcast_with_exact_totals(
    project: E2EProject, worker_endpoint: FaultEndpoint, workers: list[tuple[Any, Path]]
) -> None:
    channel, count = "celery", 3000
    gone = set(ids(channel, count)[::150])
    worker_endpoint.plan.gone, worker_endpoint.plan.latency = set(gone), 0.01
    broadcast_id = enqueue(project, channel, count)
    result = wait(project, broadcast_id, timeout=90)
    assert result["status"] == "finished", result
    assert (result["delivered"], result["gone"], result["failed"]) == (count - len(gone), 20, 0)
    assert (result["recipients"], result["shards"]) == (count, count // SHARD_SIZE)
    live = [cid for cid in ids(channel, count) if cid not in gone]
    assert [cid for cid in live if len(worker_endpoint.received[cid]) != 1] == []
    for _, log in workers:  # both workers ran shards
        assert "run_broadcast_shard" in log.read_text(errors="replace")


def test_kill_9_of_a_celery_worker_mid_shard_still_delivers_everyone(
    project: E2EProject, worker_endpoint: FaultEndpoint, workers: list[tuple[Any, Path]]
) -> None:
    channel, count = "celkill", 3000
    worker_endpoint.plan.gone, worker_endpoint.plan.latency = set(), 0.03
    broadcast_id = enqueue(project, channel, count)
    victim = None
    deadline = time.monotonic() + 40
    while victim is None and time.monotonic() < deadline:
        running = rows(
            project,
            "SELECT count(*) FROM aws_ws_async_broadcastshard "
            f"WHERE broadcast_id = {broadcast_id} AND status = 'running' AND done_pk IS NOT NULL",
        )
        if running[0][0]:
            victim = next((p for p, log in workers if _mid_shard(log)), None)
        time.sleep(0.05)
    assert victim is not None, "no shard was caught after its first checkpoint"
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(5)
    result = finished_in_db(project, broadcast_id, timeout=90)  # no waiter reaps
    assert result["status"] == "finished", result
    assert (result["delivered"], result["gone"], result["failed"]) == (count, 0, 0)
    assert max(result["attempts"]) == 2  # the killed shard was picked up again
    received = [len(worker_endpoint.received[cid]) for cid in ids(channel, count)]
    assert min(received) >= 1
    duplicates = sum(n - 1 for n in received)
    assert duplicates <= CHECKPOINT_EVERY, duplicates
    print(f"\ncelery, kill -9 mid-shard: {duplicates} duplicate posts (bound {CHECKPOINT_EVERY})")
