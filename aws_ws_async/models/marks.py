"""Marking session rows disconnected, on the database the rows came from.

One UPDATE per ``GONE_BATCH`` connection ids; only rows still connected change, so a mark
never overwrites an earlier reason (a client's own ``$disconnect`` wins over a later 410).
"""

from __future__ import annotations

from collections.abc import Iterator
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
    model: type[models.Model], db: str | None, ids: list[str]
) -> Iterator[models.QuerySet[Any]]:
    manager = model._base_manager.db_manager(db)
    for start in range(0, len(ids), GONE_BATCH):
        yield manager.filter(connection_id__in=ids[start : start + GONE_BATCH], connected=True)


def mark_ids(model: type[models.Model], db: str | None, ids: list[str], reason: str) -> int:
    """Sync: mark ``ids`` disconnected with ``reason`` on ``db``; returns how many changed."""
    return sum(rows.update(**disconnect_values(reason)) for rows in _batches(model, db, ids))


async def amark_ids(model: type[models.Model], db: str | None, ids: list[str], reason: str) -> int:
    """Async twin of :func:`mark_ids`."""
    changed = 0
    for rows in _batches(model, db, ids):
        changed += await rows.aupdate(**disconnect_values(reason))
    return changed
