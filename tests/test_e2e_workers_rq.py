"""Enqueued broadcasts run by two real ``rqworker`` processes (django-tasks-rq on Redis).

The same scenario as tests/test_e2e_workers.py (exact totals with two workers; ``kill -9`` of
the worker running a shard after its first checkpoint), on the second backend. After the kill
nobody waits: the test only reads the rows. RQ's scheduler lock may have died with the victim
(the deferred watcher then waits for RQ's 120 s fallback period), so what hands the dead
worker's shard on is the surviving worker itself, lingering on the broadcast once its own
shards are done (``scaleout.reaper.linger``).
Each run claims a Redis database number of its own (fixtures_workers.claimed_redis_db), so
runs side by side never share a queue.
"""

from __future__ import annotations

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
from tests.e2e_harness import ROOT, E2EProject
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

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


@pytest.fixture(scope="module")
def rq_url() -> Iterator[str]:
    if not redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
    with claimed_redis_db() as number:  # its own queue, whatever else runs
        yield f"redis://127.0.0.1:6379/{number}"


@pytest.fixture(scope="module")
def endpoint(worker_endpoint: FaultEndpoint) -> FaultEndpoint:
    return worker_endpoint


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, endpoint: FaultEndpoint, rq_url: str
) -> Iterator[Any]:
    env = worker_env("tests.e2e_workers_rq_settings", E2E_RQ_URL=rq_url)
    e2e = E2EProject(
        tmp_path_factory.mktemp("rqworkers"), management_endpoint_url=endpoint.url, extra_env=env
    )
    e2e.setup()
    try:
        yield e2e
    finally:
        e2e.close()


@pytest.fixture
def workers(
    project: E2EProject, tmp_path: Path
) -> Iterator[list[tuple[subprocess.Popen[bytes], Path]]]:
    """Two ``rqworker`` processes (with RQ's scheduler, for the deferred watcher)."""
    started = []
    for n in range(2):
        log = tmp_path / f"rq-{n}-{os.getpid()}-{time.time_ns()}.log"  # stem: its name
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "django", "rqworker", "default"),
                    *("--job-class", "django_tasks_rq.Job", "--with-scheduler"),
                    *("--name", log.stem),
                ],
                env=project.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the worker and its work horse in one group
            )
        started.append((process, log))
    try:
        yield started
    finally:
        stop_workers([process for process, _ in started])


def test_two_rq_workers_finish_a_broadcast_with_exact_totals(
    project: E2EProject, endpoint: FaultEndpoint, workers: list[tuple[Any, Path]]
) -> None:
    channel, count = "sigma", 3000
    gone = set(ids(channel, count)[::150])
    endpoint.plan.gone = set(gone)
    broadcast_id = enqueue(project, channel, count)
    result = wait(project, broadcast_id)
    assert result["status"] == "finished", result
    assert (result["delivered"], result["gone"], result["failed"]) == (count - len(gone), 20, 0)
    assert (result["recipients"], result["shards"]) == (count, count // SHARD_SIZE)
    live = [cid for cid in ids(channel, count) if cid not in gone]
    assert [cid for cid in live if len(endpoint.received[cid]) != 1] == []
    for _, log in workers:  # both workers ran shards
        assert "run_broadcast_shard" in log.read_text(errors="replace"), log.read_text()
    marked = rows(
        project,
        "SELECT connection_id FROM aws_ws_async_websocketsession "
        f"WHERE channel_name = '{channel}' AND connected = false",
    )
    assert {cid for (cid,) in marked} == gone


def _worker_running(url: str, shard_ids: set[int]) -> str | None:
    """The name of the rq worker whose current job is one of ``shard_ids``' tasks (read from
    Redis here: a Django shell per look would miss a shard that runs for a second)."""
    from redis import Redis
    from rq import Worker

    with Redis.from_url(url) as connection:
        for worker in Worker.all(connection=connection):
            job = worker.get_current_job()
            shard = job is not None and "shard" in (job.func_name or "") and job.args
            if shard and job is not None and job.args[0] in shard_ids:
                return str(worker.name)
    return None


def test_kill_9_of_an_rq_worker_mid_shard_still_delivers_everyone(
    project: E2EProject, endpoint: FaultEndpoint, workers: list[tuple[Any, Path]], rq_url: str
) -> None:
    channel, count = "tau", 3000
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
            name = _worker_running(rq_url, {row[0] for row in running})
            victim = next((p for p, log in workers if log.stem == name), None)
        time.sleep(0.05)
    assert victim is not None, "no shard was caught after its first checkpoint"
    # RQ runs each job in a forked work horse in its own session: kill it and the worker.
    children = Path(f"/proc/{victim.pid}/task/{victim.pid}/children").read_text().split()
    for pid in [int(c) for c in children]:
        os.kill(pid, signal.SIGKILL)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(5)
    # Nobody waits (no poll reaps): if the killed worker's scheduler held RQ's scheduler lock,
    # the deferred watcher runs only after RQ's 120 s fallback period (docs/scaling.md); the
    # surviving worker lingers on the broadcast after its shards and reaps the dead lease.
    result = finished_in_db(project, broadcast_id)
    assert result["status"] == "finished", result
    assert (result["delivered"], result["gone"], result["failed"]) == (count, 0, 0)
    assert max(result["attempts"]) == 2  # the killed shard was picked up again
    received = [len(endpoint.received[cid]) for cid in ids(channel, count)]
    assert min(received) >= 1
    duplicates = sum(n - 1 for n in received)
    assert duplicates <= CHECKPOINT_EVERY, duplicates
    print(f"\nrq, kill -9 mid-shard: {duplicates} duplicate posts (bound {CHECKPOINT_EVERY})")
