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
from aws_ws_async.models.broadcasts import Broadcast
from aws_ws_async.models.operations import check_queryset, send_operation
from aws_ws_async.scaleout.framework import check_backend


def _lease() -> timedelta:
    return timedelta(seconds=get_settings().broadcast_lease_seconds)


def store(queryset: models.QuerySet[Any], data: Any) -> Broadcast:
    """Validate and write the ``Broadcast`` row (payload, pickled query); enqueue nothing."""
    from aws_ws_async.models.sessions import WebSocketSession

    op = send_operation(data)  # size and encoding, before anything is written
    check_queryset(queryset)
    if not issubclass(queryset.model, WebSocketSession):
        raise TypeError(f"enqueue_message selects WebSocketSession rows, not {queryset.model}")
    s = get_settings()
    return Broadcast.objects.using(queryset.db).create(
        model_label=queryset.model._meta.label_lower,
        query=pickle.dumps(queryset.query),
        payload=op.payload,
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


def selection(broadcast: Broadcast, db: str) -> models.QuerySet[Any]:
    """The stored queryset, on ``db`` (Django's documented query unpickling)."""
    model = apps.get_model(broadcast.model_label)
    queryset: models.QuerySet[Any] = model._default_manager.db_manager(db).all()
    # The bytes were written by enqueue() into our own table: the trust of the database.
    queryset.query = pickle.loads(bytes(broadcast.query))  # noqa: S301
    return queryset
