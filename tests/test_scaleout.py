"""Enqueued broadcasts (qs.enqueue_message): validation, sharding, checkpoints, the reaper.

The task backend is real: the framework's ImmediateBackend (tasks run inline, the whole path in
this process) or its DummyBackend (tasks recorded, run here step by step). The @connections
side is the threaded FaultEndpoint. Real worker processes are in tests/test_e2e_workers.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from aws_ws_async.exceptions import PayloadTooLarge
from aws_ws_async.models import Broadcast, BroadcastShard, BroadcastStatus, WebSocketSession
from aws_ws_async.scaleout import runner, store
from aws_ws_async.scaleout.framework import task_api
from aws_ws_async.signals import broadcast_completed
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_scaleout import backend, recorded, sessions

# --- refused before anything is written ----------------------------------------------------


@pytest.mark.django_db
def test_no_task_backend_is_improperly_configured(small_shards: Any) -> None:
    sessions(3)
    with pytest.raises(ImproperlyConfigured, match="TASKS"):
        WebSocketSession.objects.for_channel("room").enqueue_message({"x": 1})
    assert not Broadcast.objects.exists()


@pytest.mark.django_db
def test_dummy_backend_that_never_runs_is_refused(small_shards: Any) -> None:
    small_shards.TASKS = backend("Dummy")
    with pytest.raises(ImproperlyConfigured, match="never runs"):
        WebSocketSession.objects.all().enqueue_message("hi")
    assert not Broadcast.objects.exists()


@pytest.mark.django_db
def test_payload_is_validated_before_anything_is_enqueued(small_shards: Any) -> None:
    small_shards.TASKS = backend("Immediate")
    with pytest.raises(PayloadTooLarge):
        WebSocketSession.objects.all().enqueue_message("x" * (129 * 1024))
    with pytest.raises(TypeError):
        WebSocketSession.objects.all().enqueue_message(object())
    with pytest.raises(TypeError, match="sliced"):
        WebSocketSession.objects.all()[:5].enqueue_message("hi")
    assert not Broadcast.objects.exists()


# --- the whole path, tasks run inline ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_enqueue_runs_every_shard_with_exact_totals(
    small_shards: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    small_shards.TASKS = backend("Immediate")
    rows = sessions(25)
    sessions(5, channel="elsewhere", gateway=rows[0].api_gateway)
    gone = {rows[3].connection_id, rows[17].connection_id, rows[24].connection_id}
    threaded_fault_endpoint.plan.gone = set(gone)
    completed: list[Broadcast] = []

    def on_completed(sender: Any, broadcast: Broadcast, **kwargs: Any) -> None:
        completed.append(broadcast)

    broadcast_completed.connect(on_completed)
    try:
        broadcast = WebSocketSession.objects.for_channel("room").enqueue_message({"n": 1})
        result = broadcast.wait_result(timeout=30)
    finally:
        broadcast_completed.disconnect(on_completed)
    assert result.status == BroadcastStatus.FINISHED
    assert (result.delivered, result.gone, result.failed) == (22, 3, 0)
    assert (result.recipients, result.shards_total) == (25, 3)
    assert result.finished_at is not None
    assert [b.pk for b in completed] == [broadcast.pk]
    room = {r.connection_id for r in rows}
    assert {cid for cid, bodies in threaded_fault_endpoint.received.items() if bodies} == (
        room - gone
    )
    assert all(len(b) == 1 for b in threaded_fault_endpoint.received.values())
    assert (
        set(
            WebSocketSession.objects.filter(connected=False).values_list("connection_id", flat=True)
        )
        == gone
    )
    shards = result.progress()
    assert [s["index"] for s in shards] == [0, 1, 2]
    assert sum(s["delivered"] + s["gone"] for s in shards) == 25


@pytest.mark.django_db(transaction=True)
async def test_aenqueue_and_await_result(
    small_shards: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    small_shards.TASKS = backend("Immediate")
    await asyncio.to_thread(sessions, 12)
    broadcast = await WebSocketSession.objects.for_channel("room").aenqueue_message("hello")
    result = await broadcast.await_result(timeout=30)
    assert (result.status, result.delivered, result.gone) == (BroadcastStatus.FINISHED, 12, 0)


@pytest.mark.django_db(transaction=True)
def test_empty_selection_finishes_at_once(small_shards: Any) -> None:
    small_shards.TASKS = backend("Immediate")
    broadcast = WebSocketSession.objects.for_channel("nobody").enqueue_message("hi")
    result = broadcast.wait_result(timeout=10)
    assert (result.status, result.shards_total, result.recipients) == ("finished", 0, 0)


# --- step by step: the coordinator, checkpoints, the reaper ---------------------------------


@pytest.mark.django_db
def test_coordinator_cuts_keyset_ranges_and_args_are_json(
    small_shards: Any, django_capture_on_commit_callbacks: Any
) -> None:
    small_shards.TASKS = backend("Dummy")
    rows = sessions(23)
    WebSocketSession.objects.filter(pk=rows[5].pk).update(connected=False)
    broadcast = store.store(WebSocketSession.objects.for_channel("room"), "hi")
    with django_capture_on_commit_callbacks(execute=True):
        runner.coordinate(broadcast.pk, "default")
    broadcast.refresh_from_db()
    assert (broadcast.status, broadcast.recipients, broadcast.shards_total) == ("running", 22, 3)
    shards = list(broadcast.shards.order_by("index"))
    assert shards[0].after_pk is None
    assert [s.after_pk for s in shards[1:]] == [s.last_pk for s in shards[:-1]]
    assert shards[-1].last_pk == rows[-1].pk
    sizes = [
        WebSocketSession.objects.filter(
            connected=True, pk__gt=s.after_pk or 0, pk__lte=s.last_pk
        ).count()
        for s in shards
    ]
    assert sizes == [10, 10, 2]
    tasks = recorded()
    assert [name for name, _ in tasks] == ["run_broadcast_shard"] * 3 + ["watch_broadcast"]
    assert [args for _, args in tasks] == [
        *([s.pk, "default"] for s in shards),
        [broadcast.pk, "default"],
    ]
    # The in-cluster reaper runs one lease later (30 s here), not at once.
    watcher = task_api().task_backends["default"].results[-1]
    assert 25 < (watcher.task.run_after - timezone.now()).total_seconds() <= 30


@pytest.mark.django_db
def test_dead_worker_resumes_from_checkpoint_and_zombie_cannot_count(
    small_shards: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    small_shards.TASKS = backend("Dummy")
    rows = sessions(10)
    broadcast = store.store(WebSocketSession.objects.for_channel("room"), "hi")
    runner.coordinate(broadcast.pk, "default")
    shard = BroadcastShard.objects.get(broadcast=broadcast)
    # A first worker claims the shard and checkpoints its first page (4 rows), then dies.
    dead = runner._claim(shard.pk, "default")
    assert dead is not None
    shard.refresh_from_db()
    runner.run_shard(shard.pk, "default")  # a duplicate task while the lease is live: no-op
    assert threaded_fault_endpoint.requests == 0
    first = store.selection(broadcast, "default").order_by("pk")[:4]
    from aws_ws_async.delivery import DeliveryReport
    from aws_ws_async.models.operations import send_operation

    report = DeliveryReport(delivered_count=4)
    assert runner._checkpoint(shard, "default", dead, first[3].pk, report, send_operation("hi"))
    BroadcastShard.objects.filter(pk=shard.pk).update(lease_until="2000-01-01T00:00:00Z")
    assert runner.reap(broadcast.pk, "default") == 1
    assert recorded()[-1] == ("run_broadcast_shard", [shard.pk, "default"])
    runner.run_shard(shard.pk, "default")
    # The new attempt posted only what came after the checkpoint.
    assert set(threaded_fault_endpoint.received) == {r.connection_id for r in rows[4:]}
    broadcast.refresh_from_db()
    assert (broadcast.status, broadcast.delivered) == ("finished", 10)
    shard.refresh_from_db()
    assert (shard.attempts, shard.done_pk, shard.status) == (2, rows[-1].pk, "finished")
    # The first worker comes back to life: its token no longer holds, nothing is counted.
    assert not runner._checkpoint(shard, "default", dead, rows[-1].pk, report, send_operation("x"))
    broadcast.refresh_from_db()
    assert broadcast.delivered == 10


@pytest.mark.django_db
def test_queued_shards_are_not_re_enqueued_while_another_shard_runs(small_shards: Any) -> None:
    """A thousand shards queued behind two workers wait their turn: no duplicate per lease."""
    small_shards.TASKS = backend("Dummy")
    sessions(30)
    broadcast = store.store(WebSocketSession.objects.for_channel("room"), "hi")
    runner.coordinate(broadcast.pk, "default")
    first, *queued = BroadcastShard.objects.filter(broadcast=broadcast).order_by("index")
    assert runner._claim(first.pk, "default") is not None  # a worker is on shard 0
    past = "2000-01-01T00:00:00Z"
    BroadcastShard.objects.filter(pk__in=[q.pk for q in queued]).update(lease_until=past)
    before = len(recorded())
    assert runner.reap(broadcast.pk, "default") == 0  # the queued ones wait their turn
    assert len(recorded()) == before
    BroadcastShard.objects.filter(pk=first.pk).update(lease_until=past)  # its worker died
    assert runner.reap(broadcast.pk, "default") == 3  # nothing runs: every shard re-enqueued
    assert sorted(args[0] for _, args in recorded()[before:]) == sorted(
        [first.pk, *(q.pk for q in queued)]
    )


@pytest.mark.django_db
def test_reaper_enqueues_a_coordinator_that_never_ran(small_shards: Any) -> None:
    small_shards.TASKS = backend("Dummy")
    sessions(2)
    broadcast = store.store(WebSocketSession.objects.all(), "hi")
    assert runner.reap(broadcast.pk, "default") == 0  # its lease is still live
    Broadcast.objects.filter(pk=broadcast.pk).update(lease_until="2000-01-01T00:00:00Z")
    assert runner.reap(broadcast.pk, "default") == 1
    assert recorded() == [("coordinate_broadcast", [broadcast.pk, "default"])]
    assert runner.reap(broadcast.pk, "default") == 0  # one reaper wins; the lease is renewed


@pytest.mark.django_db(transaction=True, databases={"default", "other"})
def test_every_row_of_a_broadcast_follows_using(
    small_shards: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    from aws_ws_async.models import ApiGateway

    small_shards.TASKS = backend("Immediate")
    sessions(3)  # same pks on default: must not be touched
    other = ApiGateway.objects.using("other").create(
        api_name="Other", api_id="oth0000001", stage_name="prod", api_created=True
    )
    WebSocketSession.objects.using("other").bulk_create(
        WebSocketSession(connection_id=f"oth{i:03d}=", channel_name="room", api_gateway=other)
        for i in range(7)
    )
    threaded_fault_endpoint.plan.gone = {"oth003="}
    broadcast = WebSocketSession.objects.using("other").for_channel("room").enqueue_message("x")
    assert broadcast._state.db == "other"
    result = broadcast.wait_result(timeout=30)
    assert (result.delivered, result.gone, result.recipients) == (6, 1, 7)
    assert not Broadcast.objects.using("default").exists()
    assert set(threaded_fault_endpoint.received) == {f"oth{i:03d}=" for i in range(7)} - {"oth003="}
    assert WebSocketSession.objects.using("other").get(connection_id="oth003=").connected is False
    assert WebSocketSession.objects.using("default").filter(connected=True).count() == 3


@pytest.mark.django_db
def test_wait_result_times_out_while_nothing_runs(small_shards: Any) -> None:
    small_shards.TASKS = backend("Dummy")
    sessions(2)
    broadcast = store.store(WebSocketSession.objects.all(), "hi")
    with pytest.raises(TimeoutError, match="did not finish"):
        broadcast.wait_result(timeout=0.3)
    broadcast.refresh_from_db()
    assert broadcast.status == "pending"


@pytest.mark.django_db(transaction=True)
def test_a_page_slower_than_the_lease_keeps_its_shard(
    small_shards: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    import threading
    import time

    from django.db import connection

    small_shards.AWS_WS_ASYNC = {**small_shards.AWS_WS_ASYNC, "broadcast_lease_seconds": 0.6}
    small_shards.TASKS = backend("Dummy")
    sessions(4)
    threaded_fault_endpoint.plan.latency = 1.5  # one page takes 2.5 leases
    broadcast = store.store(WebSocketSession.objects.all(), "hi")
    runner.coordinate(broadcast.pk, "default")
    shard = BroadcastShard.objects.get(broadcast=broadcast)

    def worker() -> None:
        try:
            runner.run_shard(shard.pk, "default")
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    stolen = 0
    while thread.is_alive():
        stolen += runner.reap(broadcast.pk, "default")  # a waiter polling meanwhile
        time.sleep(0.1)
    thread.join()
    assert stolen == 0
    shard.refresh_from_db()
    assert (shard.attempts, shard.status, shard.delivered) == (1, "finished", 4)


def test_package_works_without_a_task_framework() -> None:
    """No django_tasks nor django.tasks: all imports; enqueue_message names what is missing."""
    import os
    import subprocess
    import sys

    code = """
import sys
sys.modules["django_tasks"] = None
sys.modules["django.tasks"] = None
import django
django.setup()
import aws_ws_async.admin, aws_ws_async.scaleout.runner, aws_ws_async.scaleout.store
from django.core.exceptions import ImproperlyConfigured
from aws_ws_async.models import WebSocketSession
try:
    WebSocketSession.objects.all().enqueue_message("hi")
except ImproperlyConfigured as exc:
    print("refused:", exc)
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "refused: enqueue_message needs Django's task framework" in done.stdout
    assert "aws-ws-async[tasks]" in done.stdout
