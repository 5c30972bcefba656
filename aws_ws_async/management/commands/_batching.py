"""Batched deletes and updates for the housekeeping commands.

A cleanup may face millions of rows. Deleting them with one ``QuerySet.delete()`` makes Django
collect every row in memory (and a long statement holds locks for its whole run), so the
commands work in primary-key batches: act on at most ``batch_size`` rows per statement and
repeat until none are left, so memory stays flat and each statement holds its locks briefly
while ``$connect`` keeps inserting.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import connections
from django.db.models import QuerySet

DEFAULT_BATCH_SIZE = 1000


def add_batch_size_argument(parser: CommandParser, statements: str) -> None:
    """``--batch-size``, the same option on every housekeeping command."""
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"Rows per {statements} statement (default {DEFAULT_BATCH_SIZE}).",
    )


def batch_size_option(options: dict[str, Any]) -> int:
    """The parsed ``--batch-size``; below 1 would never finish a batch, so it is refused."""
    batch_size: int = options["batch_size"]
    if batch_size < 1:
        raise CommandError("--batch-size must be at least 1.")
    return batch_size


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
    on) and return how many it handled; a batch smaller than ``batch_size`` ends the loop, so
    it always terminates.
    """
    # On the queryset's database: a command run with --database (or a routed model) must not
    # delete the matching ids of another database.
    manager = queryset.model._default_manager.db_manager(queryset.db)
    in_database = connections[queryset.db].features.allow_sliced_subqueries_with_in
    total = 0
    while True:
        batch = queryset.order_by().values("pk")[:batch_size]
        if in_database:
            # One statement per batch: ... WHERE id IN (SELECT id ... LIMIT n).
            done = action(manager.filter(pk__in=batch))
        else:  # e.g. MySQL: no LIMIT inside IN (...); fetch the ids first.
            ids = [row["pk"] for row in batch]
            done = action(manager.filter(pk__in=ids)) if ids else 0
        total += done
        if done < batch_size:  # a short batch was the last one
            return total
