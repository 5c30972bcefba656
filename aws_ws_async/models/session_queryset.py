"""The QuerySet of connections: who to reach (selectors) and reaching them (bulk twins).

Sending is an aggregate method: ``qs.asend_message`` / ``qs.send_message``, ``qs.adisconnect`` /
``qs.disconnect``... are defined here once, validate every argument before anything is read or
sent (:mod:`.operations`), and hand over to one core pair in :mod:`.sending` (the twins differ
only in their I/O). The manager is built with ``from_queryset``, so every QuerySet method is on
``WebSocketSession.objects`` too. The model itself (and its one-connection twins) is in
:mod:`.sessions`, which re-exports both names.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from aws_ws_async.models import sending
from aws_ws_async.models.marks import disconnect_values
from aws_ws_async.models.operations import (
    BulkCall,
    Operation,
    ProgressFn,
    bulk_call,
    close_operation,
    send_operation,
)
from aws_ws_async.models.session_ends import IDLE_TIMEOUT, MAX_CONNECTION_AGE, DisconnectReason

if TYPE_CHECKING:
    from datetime import datetime

    from aws_ws_async.delivery import DeliveryReport
    from aws_ws_async.models.broadcasts import Broadcast
    from aws_ws_async.models.sessions import WebSocketSession  # noqa: F401 (named in the base)


class WebSocketSessionQuerySet(models.QuerySet["WebSocketSession"]):
    """Chainable selectors for recipients, and the broadcast / bulk close twins.

    Every bulk call takes ``concurrency`` (posts in flight), ``db_chunk_size`` (rows per
    query), ``timeout`` (seconds for the whole call: on expiry nothing more is posted, the marks
    learned are written and :class:`~aws_ws_async.exceptions.BroadcastTimeout` is raised with
    the partial report) and ``progress`` (called with the report so far after each chunk).
    """

    def connected(self) -> WebSocketSessionQuerySet:
        return self.filter(connected=True)

    def for_channel(self, channel_name: str) -> WebSocketSessionQuerySet:
        """Connected sessions whose *first* channel (``channel_name``) it is (compatibility).

        Not a channel's audience: it misses connections that subscribed to the channel later
        and keeps those that have left it. Use :meth:`subscribed_to` to reach a channel.
        """
        return self.filter(channel_name=channel_name, connected=True)

    def subscribed_to(self, channel_name: str) -> WebSocketSessionQuerySet:
        """Connected sessions subscribed to the channel (its broadcast audience; each once)."""
        rows = apps.get_model("aws_ws_async", "ChannelSubscription")._default_manager.filter(
            session_id=OuterRef("pk"), channel_name=channel_name
        )
        return self.filter(Exists(rows), connected=True)

    def for_user(self, user: Any) -> WebSocketSessionQuerySet:
        return self.filter(user=user, connected=True)

    def stale(
        self,
        now: datetime | None = None,
        max_age: timedelta = MAX_CONNECTION_AGE,
        idle_timeout: timedelta = IDLE_TIMEOUT,
    ) -> WebSocketSessionQuerySet:
        """Connected rows API Gateway has certainly closed: older than 2 h or idle past 10 min.

        ``last_seen_at`` is refreshed at most every ``last_seen_interval_seconds``, so the idle
        cut-off is widened by that interval to never reap a live connection.
        """
        from aws_ws_async.conf import get_settings

        now = now or timezone.now()
        slack = timedelta(seconds=get_settings().last_seen_interval_seconds)
        return self.filter(connected=True).filter(
            Q(connected_at__lt=now - max_age) | Q(last_seen_at__lt=now - idle_timeout - slack)
        )

    def mark_disconnected(self, reason: str = DisconnectReason.SERVER) -> int:
        """Flag connected rows disconnected in one UPDATE; returns how many changed."""
        close_operation(self.model, reason)  # the reason must fit the column
        return self.filter(connected=True).update(**disconnect_values(reason))

    async def amark_disconnected(self, reason: str = DisconnectReason.SERVER) -> int:
        close_operation(self.model, reason)
        return await self.filter(connected=True).aupdate(**disconnect_values(reason))

    # --- broadcast ---------------------------------------------------------------------

    def _call(
        self,
        op: Operation,
        concurrency: Any,
        db_chunk_size: Any,
        timeout: Any,
        progress: Any,
        collect_delivered: Any = True,
    ) -> BulkCall:
        """Every argument of a bulk call, checked (the same for both twins)."""
        return bulk_call(
            self,
            op,
            concurrency=concurrency,
            db_chunk_size=db_chunk_size,
            timeout=timeout,
            progress=progress,
            collect_delivered=collect_delivered,
        )

    async def asend_message(
        self,
        data: Any,
        *,
        concurrency: int | None = None,
        db_chunk_size: int | None = None,
        collect_delivered: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109 (the whole call's deadline)
        progress: ProgressFn | None = None,
    ) -> DeliveryReport:
        """Send ``data`` to every connected session selected (each once); returns the report."""
        call = self._call(
            send_operation(data), concurrency, db_chunk_size, timeout, progress, collect_delivered
        )
        return await sending.arun_bulk(self, call)

    def send_message(
        self,
        data: Any,
        *,
        concurrency: int | None = None,
        db_chunk_size: int | None = None,
        collect_delivered: bool = True,
        timeout: float | None = None,
        progress: ProgressFn | None = None,
    ) -> DeliveryReport:
        """Sync twin of :meth:`asend_message` (queries here, posts on the portal loop)."""
        call = self._call(
            send_operation(data), concurrency, db_chunk_size, timeout, progress, collect_delivered
        )
        return sending.run_bulk(self, call)

    async def asend_to_user(
        self,
        user: Any,
        data: Any,
        *,
        concurrency: int | None = None,
        db_chunk_size: int | None = None,
        collect_delivered: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109 (the whole call's deadline)
        progress: ProgressFn | None = None,
    ) -> DeliveryReport:
        """Send to every connection ``user`` has open (all their tabs and devices)."""
        return await self.for_user(user).asend_message(
            data,
            concurrency=concurrency,
            db_chunk_size=db_chunk_size,
            collect_delivered=collect_delivered,
            timeout=timeout,
            progress=progress,
        )

    def send_to_user(
        self,
        user: Any,
        data: Any,
        *,
        concurrency: int | None = None,
        db_chunk_size: int | None = None,
        collect_delivered: bool = True,
        timeout: float | None = None,
        progress: ProgressFn | None = None,
    ) -> DeliveryReport:
        """Sync twin of :meth:`asend_to_user`."""
        return self.for_user(user).send_message(
            data,
            concurrency=concurrency,
            db_chunk_size=db_chunk_size,
            collect_delivered=collect_delivered,
            timeout=timeout,
            progress=progress,
        )

    # --- enqueued (sharded, resumable) broadcast on a task backend ------------------------

    def enqueue_message(self, data: Any) -> Broadcast:
        """Hand the broadcast to task workers; returns the persisted ``Broadcast`` at once.

        The payload is validated and a task backend required before anything is written; the
        selection is stored in the row (pickled query), the coordinator enqueued after commit.
        See ``docs/scaling.md`` and :mod:`aws_ws_async.scaleout`.
        """
        from aws_ws_async.scaleout import store

        return store.enqueue(self, data)

    async def aenqueue_message(self, data: Any) -> Broadcast:
        """Async twin of :meth:`enqueue_message` (the row written in a thread)."""
        from asgiref.sync import sync_to_async

        from aws_ws_async.scaleout import store

        return await sync_to_async(store.enqueue)(self, data)

    # --- bulk close --------------------------------------------------------------------

    async def adisconnect(
        self,
        reason: str = DisconnectReason.SERVER,
        *,
        concurrency: int | None = None,
        db_chunk_size: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the whole call's deadline)
        progress: ProgressFn | None = None,
    ) -> DeliveryReport:
        """Close every selected connection server-side and mark the rows with ``reason``.

        A 410 means already closed: marked too. Rows without a (provisioned) gateway have no
        connection to close and are only marked (listed as gone). Failures stay connected.
        """
        call = self._call(
            close_operation(self.model, reason), concurrency, db_chunk_size, timeout, progress
        )
        return await sending.arun_bulk(self, call)

    def disconnect(
        self,
        reason: str = DisconnectReason.SERVER,
        *,
        concurrency: int | None = None,
        db_chunk_size: int | None = None,
        timeout: float | None = None,
        progress: ProgressFn | None = None,
    ) -> DeliveryReport:
        """Sync twin of :meth:`adisconnect`."""
        call = self._call(
            close_operation(self.model, reason), concurrency, db_chunk_size, timeout, progress
        )
        return sending.run_bulk(self, call)


#: ``WebSocketSession.objects``: every QuerySet method, on the manager too (``objects.send_message``
#: means "every connected session"; a channel-wide broadcast needs ``subscribed_to(name)`` first).
WebSocketSessionManager = models.Manager.from_queryset(
    WebSocketSessionQuerySet, "WebSocketSessionManager"
)
