"""A broadcast run by task workers: one ``Broadcast`` row, cut into ``BroadcastShard`` rows.

``qs.enqueue_message(data)`` stores the selection (the pickled ``qs.query``, Django's documented
way to keep a query) and the encoded payload here, and enqueues a coordinator task whose only
argument is this row's id (task arguments stay JSON). The coordinator cuts the selection into
pk ranges (:class:`BroadcastShard`); one task per shard posts its range, checkpointing its
progress (last pk done, counts) on its row every ``broadcast_checkpoint_every`` recipients and
holding a lease renewed at every checkpoint. A shard whose lease expired (its worker died) is
enqueued again by the reaper (:meth:`Broadcast.await_result` runs it on every poll) and goes on
from its checkpoint. The run itself lives in :mod:`aws_ws_async.scaleout`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.db import models
from django.utils.translation import gettext_lazy as _

#: Seconds between two looks at the row while waiting for a broadcast's result.
POLL_SECONDS = 0.25


class BroadcastStatus(models.TextChoices):
    """A broadcast's (and a shard's) life: pending -> running -> finished (or failed)."""

    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    FINISHED = "finished", _("Finished")
    FAILED = "failed", _("Failed")


FINAL = (BroadcastStatus.FINISHED, BroadcastStatus.FAILED)


class BroadcastOperation(models.TextChoices):
    """What each shard does to its connections: post the payload, or close them."""

    SEND = "send", _("Send the message")
    DISCONNECT = "disconnect", _("Close server-side")


class Broadcast(models.Model):
    """One enqueued broadcast: its selection, payload, status and totals (see module docs)."""

    status = models.CharField(
        max_length=16, choices=BroadcastStatus.choices, default=BroadcastStatus.PENDING
    )
    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    #: ``app_label.model_name`` of the selection's model (WebSocketSession or a subclass).
    model_label = models.CharField(max_length=200)
    #: ``pickle.dumps(queryset.query)``: written and read only by this package.
    query = models.BinaryField()
    payload = models.BinaryField()
    #: A send posts ``payload``; a disconnect (the admin's bulk close) DELETEs each connection
    #: and writes ``close_reason`` on the rows it closed.
    operation = models.CharField(
        max_length=16, choices=BroadcastOperation.choices, default=BroadcastOperation.SEND
    )
    close_reason = models.CharField(max_length=16, blank=True, default="")
    shard_size = models.PositiveIntegerField()
    checkpoint_every = models.PositiveIntegerField()
    shards_total = models.PositiveIntegerField(default=0)
    #: Recipients selected when the coordinator cut the shards.
    recipients = models.PositiveBigIntegerField(default=0)
    delivered = models.PositiveBigIntegerField(default=0)
    gone = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)
    #: The coordinator's lease: a coordinator that died is enqueued again once it expires.
    lease_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = _("broadcast")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"broadcast {self.pk} ({self.status})"

    @property
    def done(self) -> bool:
        return self.status in FINAL

    def progress(self) -> list[dict[str, Any]]:
        """Per-shard progress: index, status, range, checkpoint and counts."""
        fields = (
            *("index", "status", "after_pk", "last_pk", "done_pk"),
            *("attempts", "delivered", "gone", "failed"),
        )
        return list(self.shards.order_by("index").values(*fields))

    def poll(self) -> bool:
        """Reload the row; if not done, hand expired leases to new tasks. True once done."""
        from aws_ws_async.scaleout import runner

        self.refresh_from_db()
        if self.done:
            return True
        runner.reap(self.pk, self._state.db or "default")
        return False

    def wait_result(self, timeout: float | None = None) -> Broadcast:
        """Sync twin of :meth:`await_result`: block until done (``TimeoutError`` past it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll():
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{self} did not finish within {timeout} s")
            time.sleep(POLL_SECONDS)
        return self

    async def await_result(self, timeout: float | None = None) -> Broadcast:  # noqa: ASYNC109
        """Wait until every shard is done and the totals are final; returns ``self``.

        While waiting it also runs the reaper, so a shard whose worker died is enqueued again.
        ``TimeoutError`` after ``timeout`` seconds (the broadcast goes on in the workers).
        """
        step = sync_to_async(self.poll)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not await step():
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{self} did not finish within {timeout} s")
            await asyncio.sleep(POLL_SECONDS)
        return self


class BroadcastShard(models.Model):
    """One pk range ``(after_pk, last_pk]`` of a broadcast's selection, run by one task."""

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="shards")
    index = models.PositiveIntegerField()
    #: Exclusive lower bound (None: from the first row) and inclusive upper bound of the range.
    after_pk = models.BigIntegerField(null=True, blank=True)
    last_pk = models.BigIntegerField()
    #: Checkpoint: the last pk whose post is counted below (None: nothing done yet).
    done_pk = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=BroadcastStatus.choices, default=BroadcastStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    #: The running attempt's token: a checkpoint is written only while the token still matches.
    lease_token = models.CharField(max_length=32, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    delivered = models.PositiveBigIntegerField(default=0)
    gone = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("broadcast shard")
        constraints = [
            models.UniqueConstraint(fields=["broadcast", "index"], name="broadcast_shard_index")
        ]

    def __str__(self) -> str:
        return f"shard {self.index} of broadcast {self.broadcast_id} ({self.status})"
