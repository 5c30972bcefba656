"""Enqueued broadcasts run by two real ``db_worker`` processes (django-tasks-db).

The e2e project (tests/e2e_workers_settings.py: the task queue in the project's own database)
posts to a loopback FaultEndpoint served by this test process, which counts every body each
connection id received. A shell enqueues; two ``db_worker`` processes run the coordinator and
the shards; another shell waits with ``Broadcast.wait_result`` (which runs the reaper). The
second test ``kill -9``s the worker holding a shard after its first checkpoint and then only
reads the rows (no waiter runs the reaper): the surviving worker (lingering on the broadcast
after its shards, or running the deferred watcher) hands the shard on, and the broadcast
finishes with exact totals, every live connection delivered, duplicates at most one checkpoint
interval.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aws_ws_async.testing import FaultEndpoint
from tests.e2e_harness import E2EProject
from tests.fixtures_workers import (
    CHECKPOINT_EVERY,
    SHARD_SIZE,
    Worker,
    busiest_second,
    enqueue,
    finished_in_db,
    ids,
    json_column,
    redis_up,
    rows,
    shard_workers,
    start_db_workers,
    stop_workers,
    wait,
    worker_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]


@pytest.fixture(scope="module")
def endpoint(worker_endpoint: FaultEndpoint) -> FaultEndpoint:
    return worker_endpoint


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, endpoint: FaultEndpoint) -> Iterator[Any]:
    e2e = E2EProject(
        tmp_path_factory.mktemp("workers"),
        management_endpoint_url=endpoint.url,
        extra_env=worker_env("tests.e2e_workers_settings"),
    )
    e2e.setup()
    try:
        yield e2e
    finally:
        e2e.close()


@pytest.fixture
def workers(project: E2EProject, tmp_path: Path) -> Iterator[list[Worker]]:
    """Two ``db_worker`` processes of the project, stopped after the test."""
    started = start_db_workers(project, tmp_path)
    try:
        yield started
    finally:
        stop_workers([w.process for w in started])


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
                worker_ids, arguments = json_column(value), json_column(args)
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


def test_two_workers_share_one_rate_budget_in_redis(
    project: E2EProject, endpoint: FaultEndpoint, tmp_path: Path
) -> None:
    """Two real workers, one Redis budget of 400/s: together they stay under it."""
    redis_url = "redis://127.0.0.1:6379/0"
    if not redis_up():
        pytest.skip("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
    budget, channel, count = 400, "rho", 2000
    env = {
        "E2E_RATE_BUDGET": str(budget),
        "E2E_BUDGET_REDIS": redis_url,
        "E2E_BUDGET_ACCOUNT": f"e2e-{os.getpid()}-{time.time_ns()}",
    }
    endpoint.plan.gone, endpoint.plan.latency = set(), 0.01
    before = len(endpoint.in_flight_log)
    started = start_db_workers(project, tmp_path, env)
    try:
        broadcast_id = enqueue(project, channel, count)
        result = wait(project, broadcast_id)
    finally:
        stop_workers([w.process for w in started])
    assert (result["status"], result["delivered"], result["failed"]) == ("finished", count, 0)
    starts = [at for at, _ in endpoint.in_flight_log[before:]]
    assert len(starts) == count
    peak, duration = busiest_second(starts), starts[-1] - starts[0]
    print(f"\nbudget {budget}/s: busiest second {peak}, mean {count / duration:.0f}/s")
    assert peak <= budget * 1.1, peak  # unbounded, two workers post ~2,000/s here
    assert duration >= (count - budget) / budget * 0.9, duration
    assert {w.worker_id for w in started} <= shard_workers(project)  # both took permits
