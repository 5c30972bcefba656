"""The task definitions a worker runs; arguments are JSON (ids and a database alias only).

Imported only when a broadcast is enqueued or a worker loads a task, so importing
``aws_ws_async`` needs no task framework (see :mod:`.framework`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_ws_async.scaleout import runner
from aws_ws_async.scaleout.framework import task_api

_task: Callable[..., Callable[[Callable[..., None]], Any]] = task_api().task


@_task()
def coordinate_broadcast(broadcast_id: int, using: str) -> None:
    """Cut the broadcast's selection into shards and enqueue one task per shard."""
    runner.coordinate(broadcast_id, using)


@_task()
def run_broadcast_shard(shard_id: int, using: str) -> None:
    """Post one shard's range from its checkpoint on."""
    runner.run_shard(shard_id, using)


@_task()
def watch_broadcast(broadcast_id: int, using: str) -> None:
    """Reap the broadcast's expired leases; run again one lease later until it is done."""
    runner.watch(broadcast_id, using)
