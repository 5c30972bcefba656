"""Shard, run, checkpoint, reap and finish an enqueued broadcast on a task backend.

* :mod:`.store` writes the broadcast's row (``enqueue``) and reads its selection back.
* :func:`coordinate` walks the selection by keyset (one aggregate query per shard: the
  ``size``-th pk after the previous bound; never OFFSET, never the id list in memory) and
  writes the shard rows, then enqueues one task per shard after commit.
* :func:`run_shard` claims its shard (a fresh lease token), streams its range from the
  checkpoint by keyset pages of ``checkpoint_every`` rows and posts each page through the one
  fan-out (:class:`~aws_ws_async.models.broadcast.FanOut`). After each page it checkpoints, in
  one transaction, the last pk done, the counts (on the shard and the broadcast) and the gone
  marks, but only while its token still holds the lease: a worker that lost its shard to the
  reaper cannot count twice. A crash therefore re-posts at most one page.
* :func:`reap` (in :mod:`.reaper`, with :func:`linger`, :func:`watch`, :func:`finalize`)
  gives shards whose lease expired (their worker died) to a new task. It runs on
  every poll of ``await_result`` / ``wait_result``, and in the cluster itself: on backends that
  can defer tasks, :func:`watch` runs one lease after the shards were enqueued and again every
  lease until the broadcast is done, so nobody has to wait for a broadcast to be resumed.
* :func:`linger` keeps a worker that finished its shard, while only other workers' shards of
  the broadcast remain, watching their leases: a dead worker's shard is handed on by its peers
  even when nobody waits and the backend's deferred watcher is late.
* :func:`finalize` closes the broadcast once every shard is done (and sends
  ``broadcast_completed`` exactly once).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import connections, models, transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from aws_ws_async import sync, telemetry
from aws_ws_async.conf import get_settings
from aws_ws_async.delivery import DeliveryReport
from aws_ws_async.delivery.budget import use_budgets
from aws_ws_async.exceptions import BroadcastAborted
from aws_ws_async.models.broadcast import FanOut
from aws_ws_async.models.broadcasts import Broadcast, BroadcastShard, BroadcastStatus
from aws_ws_async.models.gateways import ApiGateway
from aws_ws_async.models.marks import mark_ids
from aws_ws_async.models.operations import Operation, delivery_policy
from aws_ws_async.models.paging import pages
from aws_ws_async.scaleout.budgets import cluster_budgets
from aws_ws_async.scaleout.reaper import finalize, linger, schedule_watch
from aws_ws_async.scaleout.reaper import reap as reap  # the public entry points, as before
from aws_ws_async.scaleout.reaper import watch as watch
from aws_ws_async.scaleout.store import operation_of, selection

logger = logging.getLogger("aws_ws_async.scaleout")

#: A shard whose attempts keep raising is given up (status failed) after this many attempts.
MAX_ATTEMPTS = 5
#: Shard rows written per INSERT by the coordinator (its memory stays flat in the selection).
SHARD_BATCH = 200


def _lease() -> timedelta:
    return timedelta(seconds=get_settings().broadcast_lease_seconds)


def _tasks() -> Any:
    from aws_ws_async.scaleout import tasks

    return tasks


# --- coordinator -----------------------------------------------------------------------------


def _next_bound(base: models.QuerySet[Any], after: Any, size: int) -> tuple[Any, int]:
    """``(last pk, count)`` of the next ``size`` distinct rows after ``after``: one query."""
    window = base if after is None else base.filter(pk__gt=after)
    ids = window.order_by("pk").values("pk").distinct()[:size]
    if connections[base.db].features.allow_sliced_subqueries_with_in:
        rows = base.model._base_manager.using(base.db).filter(pk__in=ids)
        found = rows.aggregate(last=Max("pk"), n=Count("pk"))
        return found["last"], int(found["n"] or 0)
    last, n = None, 0  # MySQL-like backends: stream one shard's pks (one shard in memory)
    for n, pk in enumerate(ids.values_list("pk", flat=True).iterator(), start=1):  # noqa: B007
        last = pk
    return last, n


def coordinate(broadcast_id: int, db: str) -> None:
    """Cut the selection into shards by pk ranges and enqueue one task per shard."""
    tasks = _tasks()
    now = timezone.now()
    with transaction.atomic(using=db):
        broadcast = Broadcast.objects.using(db).select_for_update().get(pk=broadcast_id)
        if broadcast.status != BroadcastStatus.PENDING:
            return  # a second coordinator (re-enqueued by the reaper): the first one did it
        base = selection(broadcast, db).filter(connected=True)
        after: Any = None
        index = total = 0
        batch: list[BroadcastShard] = []
        while True:
            last, n = _next_bound(base, after, broadcast.shard_size)
            if not n:
                break
            batch.append(
                BroadcastShard(
                    broadcast=broadcast,
                    index=index,
                    after_pk=after,
                    last_pk=last,
                    lease_until=now + _lease(),
                )
            )
            if len(batch) >= SHARD_BATCH:
                BroadcastShard.objects.using(db).bulk_create(batch)
                batch = []
            after, index, total = last, index + 1, total + n
            if n < broadcast.shard_size:
                break
        BroadcastShard.objects.using(db).bulk_create(batch)
        Broadcast.objects.using(db).filter(pk=broadcast_id).update(
            status=BroadcastStatus.RUNNING,
            shards_total=index,
            recipients=total,
            started_at=now,
            lease_until=None,
        )
        ids = list(
            BroadcastShard.objects.using(db)
            .filter(broadcast_id=broadcast_id)
            .values_list("pk", flat=True)
        )

        def enqueue_shards() -> None:
            for shard_id in ids:
                tasks.run_broadcast_shard.enqueue(shard_id, db)
            if ids:
                schedule_watch(broadcast_id, db)

        transaction.on_commit(enqueue_shards, using=db)
    logger.info("broadcast %s: %s recipients in %s shards", broadcast_id, total, index)
    if not index:
        finalize(broadcast_id, db)


# --- one shard -------------------------------------------------------------------------------


def _claim(shard_id: int, db: str) -> str | None:
    """Take the shard (pending, or running with an expired lease); the new token or None."""
    token, now = uuid.uuid4().hex, timezone.now()
    claimable = Q(status=BroadcastStatus.PENDING) | Q(
        status=BroadcastStatus.RUNNING, lease_until__lt=now
    )
    taken = (
        BroadcastShard.objects.using(db)
        .filter(claimable, pk=shard_id)
        .update(
            status=BroadcastStatus.RUNNING,
            lease_token=token,
            lease_until=now + _lease(),
            attempts=F("attempts") + 1,
        )
    )
    return token if taken else None


def _checkpoint(
    shard: BroadcastShard, db: str, token: str, last_pk: Any, report: DeliveryReport, op: Operation
) -> bool:
    """Counts, checkpoint and gone marks in one transaction, only while ``token`` holds."""
    gone, failed = len(report.gone), len(report.failed)
    with transaction.atomic(using=db):
        held = (
            BroadcastShard.objects.using(db)
            .filter(pk=shard.pk, lease_token=token)
            .update(
                done_pk=last_pk,
                delivered=F("delivered") + report.delivered_count,
                gone=F("gone") + gone,
                failed=F("failed") + failed,
                lease_until=timezone.now() + _lease(),
            )
        )
        if not held:
            return False
        Broadcast.objects.using(db).filter(pk=shard.broadcast_id).update(
            delivered=F("delivered") + report.delivered_count,
            gone=F("gone") + gone,
            failed=F("failed") + failed,
        )
        model = apps.get_model(shard.broadcast.model_label)
        mark_ids(model, db, op.to_mark(report), op.reason, op.mark_grace)
    return True


def _renew(shard_id: int, db: str, token: str) -> bool:
    """Extend the lease while a page is in flight; False once another worker holds it."""
    rows = BroadcastShard.objects.using(db).filter(pk=shard_id, lease_token=token)
    return bool(rows.update(lease_until=timezone.now() + _lease()))


def _post_page(
    op: Operation,
    groups: dict[int | None, list[str]],
    endpoints: Any,
    policy: Any,
    shard: BroadcastShard,
    db: str,
    token: str,
    trace: telemetry.ShardTrace,
) -> DeliveryReport | None:
    """Post one page on the portal, renewing the lease every third of it meanwhile.

    A page slower than the lease (retries, a slow endpoint) keeps its shard; if the lease was
    lost anyway, the page is stopped (nothing more posted) and None returned: not counted.
    """
    stop: concurrent.futures.Future[None] = concurrent.futures.Future()
    fan = FanOut(op, groups, endpoints, policy, stop=stop)

    async def run_budgeted() -> DeliveryReport:
        with use_budgets(cluster_budgets):  # every shard worker shares the account's budget
            return await fan.run()

    future = sync.submit(trace.bind(run_budgeted))  # the shard's span current on the portal
    beat = get_settings().broadcast_lease_seconds / 3
    while True:
        try:
            return future.result(timeout=beat)
        except concurrent.futures.TimeoutError:
            if _renew(shard.pk, db, token):
                continue
            stop.set_result(None)
            with contextlib.suppress(BroadcastAborted):
                future.result()
            return None


def _post_range(shard: BroadcastShard, db: str, token: str, trace: telemetry.ShardTrace) -> bool:
    """Post the shard's range from its checkpoint; False if the lease was lost on the way."""
    broadcast = shard.broadcast
    op = operation_of(broadcast)
    # A close marks the rows it closed: it needs the delivered ids (a page's worth at most).
    policy = delivery_policy(collect_delivered=op.closes)
    base = selection(broadcast, db).filter(connected=True, pk__lte=shard.last_pk)
    start = shard.done_pk if shard.done_pk is not None else shard.after_pk
    if start is not None:
        base = base.filter(pk__gt=start)
    fields = ("connection_id", "api_gateway_id")
    began = time.perf_counter()
    for page in pages(base, fields, broadcast.checkpoint_every):
        trace.page(began, len(page), None)  # the read: a db_page child span
        groups: dict[int | None, list[str]] = {}
        for _, connection_id, gateway_id in page:
            groups.setdefault(gateway_id, []).append(connection_id)
        endpoints = ApiGateway.objects.using(db).endpoints(list(groups))
        report = _post_page(op, groups, endpoints, policy, shard, db, token, trace)
        trace.posted(report)  # the page's counters, at once (None: lease lost, not counted)
        if report is None or not _checkpoint(shard, db, token, page[-1][0], report, op):
            logger.warning("shard %s: lease lost to another worker, stopping", shard.pk)
            return False
        began = time.perf_counter()
    return True


def run_shard(shard_id: int, db: str) -> None:
    """Claim the shard, post its range from its checkpoint, finish it (see module docs)."""
    token = _claim(shard_id, db)
    if token is None:
        return  # finished, or another worker holds a live lease
    shard = BroadcastShard.objects.using(db).select_related("broadcast").get(pk=shard_id)
    trace = telemetry.start_shard(shard.broadcast_id, shard_id, attempt=shard.attempts, db=db)
    try:
        if not _post_range(shard, db, token, trace):
            trace.end(error="LeaseLost")
            return
    except Exception as exc:
        trace.end(error=type(exc).__name__)
        _release(shard, db, token, exc)
        raise
    trace.end()
    done = (
        BroadcastShard.objects.using(db)
        .filter(pk=shard_id, lease_token=token)
        .update(status=BroadcastStatus.FINISHED, lease_until=None)
    )
    if done and not finalize(shard.broadcast_id, db):
        linger(shard.broadcast_id, db)


def _release(shard: BroadcastShard, db: str, token: str, exc: BaseException) -> None:
    """After an error: let the reaper retry at once, or give up after ``MAX_ATTEMPTS``."""
    logger.exception("shard %s failed (attempt %s)", shard.pk, shard.attempts)
    give_up = shard.attempts >= MAX_ATTEMPTS
    BroadcastShard.objects.using(db).filter(pk=shard.pk, lease_token=token).update(
        error=repr(exc)[:2000],
        lease_until=timezone.now(),
        status=BroadcastStatus.FAILED if give_up else BroadcastStatus.RUNNING,
    )
    if give_up:
        finalize(shard.broadcast_id, db)
