"""Batched deletes and updates for the housekeeping commands.

A cleanup may face millions of rows. Deleting them with one ``QuerySet.delete()`` makes Django
collect every row in memory (and a long statement holds locks for its whole run), so the
commands work in primary-key batches: read at most ``batch_size`` ids, act on exactly those,
repeat until none are left.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet

DEFAULT_BATCH_SIZE = 1000


def delete_in_batches(queryset: QuerySet[Any], batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Delete every row of ``queryset``; returns the number of rows of its model deleted."""
    return apply_in_batches(
        queryset, lambda rows: rows.delete()[1].get(queryset.model._meta.label, 0), batch_size
    )


def apply_in_batches(
    queryset: QuerySet[Any],
    action: Callable[[QuerySet[Any]], int],
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Run ``action`` on successive batches of ``queryset`` until it selects no row.

    ``action`` must take rows out of ``queryset`` (delete them, or change the field it filters
    on), otherwise the loop would see the same batch again; a batch that changes nothing stops
    the loop as a safety net.
    """
    manager = queryset.model._default_manager
    total = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return total
        done = action(manager.filter(pk__in=ids))
        total += done
        if done == 0:
            return total
