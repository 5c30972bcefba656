"""Reap, linger, watch and finish an enqueued broadcast (split from :mod:`.runner`).

* :func:`reap` gives shards whose lease expired (their worker died) to a new task, and the
  coordinator too if it never ran. A queued shard (pending) is re-enqueued only while no shard
  of the broadcast runs (its task may have been lost), never while it merely waits its turn.
  One reaper wins each expired lease (the update matches the lease it saw).
* :func:`linger` keeps a worker that finished its shard watching the others' leases while only
  they remain (no waiter, no deferred watcher needed to resume a dead worker's shard).
* :func:`watch` / :func:`schedule_watch`: the deferred in-cluster reaper, on backends that can
  defer tasks.
* :func:`finalize` closes the broadcast once every shard is done and sends
  ``broadcast_completed`` exactly once.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from aws_ws_async.conf import get_settings
from aws_ws_async.models.broadcasts import FINAL, Broadcast, BroadcastShard, BroadcastStatus
from aws_ws_async.signals import broadcast_completed

logger = logging.getLogger("aws_ws_async.scaleout")

#: A worker lingers (see :func:`linger`) at most this many leases after its last shard.
LINGER_LEASES = 20


def _lease() -> timedelta:
    return timedelta(seconds=get_settings().broadcast_lease_seconds)


def _tasks() -> Any:
    from aws_ws_async.scaleout import tasks

    return tasks


def reap(broadcast_id: int, db: str) -> int:
    """Enqueue again what lost its worker (coordinator or shards); how many were enqueued."""
    tasks, now = _tasks(), timezone.now()
    rows = Broadcast.objects.using(db)
    stale = rows.filter(pk=broadcast_id, status=BroadcastStatus.PENDING, lease_until__lt=now)
    if stale.update(lease_until=now + _lease()):
        tasks.coordinate_broadcast.enqueue(broadcast_id, db)
        return 1
    shards = BroadcastShard.objects.using(db).filter(broadcast_id=broadcast_id)
    expired = shards.exclude(status__in=FINAL).filter(lease_until__lt=now)
    if shards.filter(status=BroadcastStatus.RUNNING, lease_until__gte=now).exists():
        # Workers are on this broadcast: a pending shard waits its turn in the queue, it is not
        # lost. Re-enqueuing it every lease would flood the queue with no-op duplicates (a
        # thousand queued shards behind two workers); it is reaped once nothing runs.
        expired = expired.filter(status=BroadcastStatus.RUNNING)
    count = 0
    for shard_id, lease_until in expired.values_list("pk", "lease_until"):
        # Only one reaper wins a shard: the update matches the lease it saw.
        taken = shards.filter(pk=shard_id, lease_until=lease_until).exclude(status__in=FINAL)
        if taken.update(status=BroadcastStatus.PENDING, lease_until=now + _lease()):
            logger.warning("broadcast %s: shard %s re-enqueued", broadcast_id, shard_id)
            tasks.run_broadcast_shard.enqueue(shard_id, db)
            count += 1
    if rows.filter(pk=broadcast_id, status=BroadcastStatus.RUNNING).exists():
        finalize(broadcast_id, db)  # in case the last shard's worker died right after finishing
    return count


def linger(broadcast_id: int, db: str) -> None:
    """Stay with the broadcast while its last shards run on other workers; reap a dead one.

    Called by a worker that finished a shard when the broadcast is not done and no shard of it
    is queued: that worker has nothing else of this broadcast to do, so it watches the running
    shards' leases (every third of a lease) and re-enqueues the first that expires, then
    returns, free to take that task itself. This hands a ``kill -9``-ed worker's shard on
    without a waiter and without the deferred watcher (whose timing the backend decides: RQ's
    scheduler may wait 120 s for a lock its dead holder kept). It returns as soon as a shard
    is queued, the broadcast is done, or after ``LINGER_LEASES`` leases.
    """
    s = get_settings()
    shards = BroadcastShard.objects.using(db).filter(broadcast_id=broadcast_id)
    deadline = time.monotonic() + LINGER_LEASES * s.broadcast_lease_seconds
    while time.monotonic() < deadline:
        if shards.filter(status=BroadcastStatus.PENDING).exists():
            return  # queued work: the backend hands it to a free worker
        if not shards.exclude(status__in=FINAL).exists():
            return
        if reap(broadcast_id, db):
            return
        time.sleep(s.broadcast_lease_seconds / 3)


def schedule_watch(broadcast_id: int, db: str) -> bool:
    """Enqueue :func:`watch` one lease from now, if the backend can defer tasks."""
    watcher = _tasks().watch_broadcast
    if not getattr(watcher.get_backend(), "supports_defer", False):
        return False
    watcher.using(run_after=timezone.now() + _lease()).enqueue(broadcast_id, db)
    return True


def watch(broadcast_id: int, db: str) -> None:
    """The in-cluster reaper: a broadcast nobody waits for still gets its dead shards re-run."""
    reap(broadcast_id, db)
    if not Broadcast.objects.using(db).filter(pk=broadcast_id, status__in=FINAL).exists():
        schedule_watch(broadcast_id, db)


def finalize(broadcast_id: int, db: str) -> bool:
    """Close the broadcast once every shard is done; True for the one call that closed it."""
    shards = BroadcastShard.objects.using(db).filter(broadcast_id=broadcast_id)
    if shards.exclude(status__in=FINAL).exists():
        return False
    status = BroadcastStatus.FINISHED
    if shards.filter(status=BroadcastStatus.FAILED).exists():
        status = BroadcastStatus.FAILED
    totals = shards.aggregate(d=Sum("delivered"), g=Sum("gone"), f=Sum("failed"))
    closed = (
        Broadcast.objects.using(db)
        .filter(pk=broadcast_id, status__in=[BroadcastStatus.PENDING, BroadcastStatus.RUNNING])
        .update(
            status=status,
            finished_at=timezone.now(),
            delivered=totals["d"] or 0,
            gone=totals["g"] or 0,
            failed=totals["f"] or 0,
        )
    )
    if not closed:
        return False
    broadcast = Broadcast.objects.using(db).get(pk=broadcast_id)
    logger.info(
        "broadcast %s %s: %s delivered, %s gone, %s failed",
        broadcast_id,
        status,
        broadcast.delivered,
        broadcast.gone,
        broadcast.failed,
    )
    broadcast_completed.send(sender=Broadcast, broadcast=broadcast)
    return True
