"""Marking session rows disconnected, on the database the rows came from.

One UPDATE per ``GONE_BATCH`` connection ids; only rows still connected change, so a mark
never overwrites an earlier reason (a client's own ``$disconnect`` wins over a later 410).

A 410 is not proof of a dead connection while it is young: ``$connect`` inserts the session row
before it answers, and API Gateway answers ``GoneException`` to every post until that answer
has come back and the socket is open. A broadcast in that window would otherwise kill a session
that is about to live for two hours. So the *gone* mark of a send (``Operation.mark_grace``)
skips rows connected less than ``gone_grace_seconds`` ago (they are still reported gone: that
post was not delivered); a real early close of such a row still arrives as its ``$disconnect``.
Server-side closes and the reaper's ``GET`` are not graced: a close means close.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db import models
from django.utils import timezone

#: Ids per UPDATE (keeps the ``IN (...)`` list well under every backend's parameter limit).
GONE_BATCH = 500


def disconnect_values(reason: str) -> dict[str, Any]:
    """The columns a disconnect writes (one timestamp for the whole UPDATE)."""
    now = timezone.now()
    return {
        "connected": False,
        "disconnected_at": now,
        "disconnect_reason": reason,
        "updated_on": now,
    }


def _batches(
    model: type[models.Model], db: str | None, ids: list[str], grace: float
) -> Iterator[models.QuerySet[Any]]:
    manager = model._base_manager.db_manager(db)
    for start in range(0, len(ids), GONE_BATCH):
        rows = manager.filter(connection_id__in=ids[start : start + GONE_BATCH], connected=True)
        if grace > 0:
            rows = rows.filter(connected_at__lt=timezone.now() - timedelta(seconds=grace))
        yield rows


def mark_ids(
    model: type[models.Model], db: str | None, ids: list[str], reason: str, grace: float = 0.0
) -> int:
    """Sync: mark ``ids`` disconnected with ``reason`` on ``db``; returns how many changed.

    ``grace``: rows connected less than this many seconds ago are left alone (a post's 410).
    """
    return sum(rows.update(**disconnect_values(reason)) for rows in _batches(model, db, ids, grace))


async def amark_ids(
    model: type[models.Model], db: str | None, ids: list[str], reason: str, grace: float = 0.0
) -> int:
    """Async twin of :func:`mark_ids`."""
    changed = 0
    for rows in _batches(model, db, ids, grace):
        changed += await rows.aupdate(**disconnect_values(reason))
    return changed
