"""Write an enqueued broadcast's row and read its selection back.

:func:`enqueue` validates the payload and the queryset, refuses when no task backend would run
the broadcast, writes the :class:`~aws_ws_async.models.broadcasts.Broadcast` row (the pickled
query, never task arguments) and enqueues the coordinator after that row commits.
"""

from __future__ import annotations

import pickle
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import models, transaction
from django.utils import timezone

from aws_ws_async.conf import get_settings
from aws_ws_async.models.broadcasts import Broadcast, BroadcastOperation
from aws_ws_async.models.operations import (
    GONE,
    Operation,
    check_queryset,
    close_operation,
    send_operation,
)
from aws_ws_async.scaleout.framework import check_backend


def _lease() -> timedelta:
    return timedelta(seconds=get_settings().broadcast_lease_seconds)


def store(
    queryset: models.QuerySet[Any], data: Any, *, close_reason: str | None = None
) -> Broadcast:
    """Validate and write the ``Broadcast`` row (payload, pickled query); enqueue nothing.

    With ``close_reason`` the row is a bulk close (``data`` is ignored): each shard DELETEs
    its connections and writes the reason, as ``queryset.disconnect(reason)`` does inline.
    """
    from aws_ws_async.models.sessions import WebSocketSession

    if close_reason is None:
        op = send_operation(data)  # size and encoding, before anything is written
    else:
        op = close_operation(queryset.model, close_reason)  # the reason must fit the column
    check_queryset(queryset)
    if not issubclass(queryset.model, WebSocketSession):
        raise TypeError(f"enqueue_message selects WebSocketSession rows, not {queryset.model}")
    s = get_settings()
    return Broadcast.objects.using(queryset.db).create(
        model_label=queryset.model._meta.label_lower,
        query=pickle.dumps(queryset.query),
        payload=op.payload or b"",
        operation=BroadcastOperation.SEND
        if close_reason is None
        else BroadcastOperation.DISCONNECT,
        close_reason=close_reason or "",
        shard_size=s.broadcast_shard_size,
        checkpoint_every=s.broadcast_checkpoint_every,
        lease_until=timezone.now() + _lease(),
    )


def enqueue(queryset: models.QuerySet[Any], data: Any) -> Broadcast:
    """Store the broadcast and enqueue its coordinator (after the row commits)."""
    send_operation(data)  # a bad payload is a TypeError even without a task backend
    check_backend()
    from aws_ws_async.scaleout import tasks

    broadcast = store(queryset, data)
    pk, db = broadcast.pk, queryset.db
    transaction.on_commit(lambda: tasks.coordinate_broadcast.enqueue(pk, db), using=db)
    return broadcast


def enqueue_disconnect(queryset: models.QuerySet[Any], reason: str) -> Broadcast:
    """A bulk server-side close run by the workers, as :func:`enqueue` runs a send.

    The reason is checked (it must fit ``disconnect_reason``) and a task backend required before
    the row is written; the admin's *Disconnect selected* uses it when tasks are configured.
    """
    close_operation(queryset.model, reason)
    check_backend()
    from aws_ws_async.scaleout import tasks

    broadcast = store(queryset, None, close_reason=reason)
    pk, db = broadcast.pk, queryset.db
    transaction.on_commit(lambda: tasks.coordinate_broadcast.enqueue(pk, db), using=db)
    return broadcast


def operation_of(broadcast: Broadcast) -> Operation:
    """What the broadcast's shards do: post its payload, or close with its reason."""
    if broadcast.operation == BroadcastOperation.DISCONNECT:
        return close_operation(apps.get_model(broadcast.model_label), broadcast.close_reason)
    return Operation("broadcast", "send", GONE, bytes(broadcast.payload))


def selection(broadcast: Broadcast, db: str) -> models.QuerySet[Any]:
    """The stored queryset, on ``db`` (Django's documented query unpickling)."""
    model = apps.get_model(broadcast.model_label)
    queryset: models.QuerySet[Any] = model._default_manager.db_manager(db).all()
    # The bytes were written by enqueue() into our own table: the trust of the database.
    queryset.query = pickle.loads(bytes(broadcast.query))  # noqa: S301
    return queryset
