"""Keyset paging over a queryset's distinct primary keys, in a sync and an async form.

Each page is one query: ``WHERE pk > last ORDER BY pk LIMIT size``, with ``DISTINCT`` when the
query joins another table, so a queryset that spans a multi-valued relation
(``filter(user__groups__in=[g1, g2])``, a user in both groups) still yields each row once, and
memory stays at one page however many rows match. Without a join (plain filters, or an
``EXISTS`` such as ``subscribed_to``) there is nothing to repeat, and leaving ``DISTINCT`` out
lets PostgreSQL stop at ``LIMIT`` instead of sorting every match for every page. The query runs
on the queryset's own database (whatever ``using()`` chose).

The async form reads the next page while the caller works through the current one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.db import models

Row = tuple[Any, ...]


def _page(queryset: models.QuerySet[Any], fields: tuple[str, ...], after: Any, size: int) -> Any:
    """The query of one page: ``fields`` of the next ``size`` distinct rows after pk ``after``."""
    rows = queryset if after is None else queryset.filter(pk__gt=after)
    page = rows.order_by("pk").values_list("pk", *fields)
    if sum(1 for refs in page.query.alias_refcount.values() if refs) > 1:  # a join may
        page = page.distinct()  # repeat a row (unused aliases are trimmed from the SQL)
    return page[:size]


def pages(
    queryset: models.QuerySet[Any], fields: tuple[str, ...], size: int
) -> Iterator[list[Row]]:
    """Sync: lists of ``(pk, *fields)`` rows in pk order, ``size`` per query."""
    after: Any = None
    while True:
        rows = list(_page(queryset, fields, after, size))
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1][0]


async def apages(
    queryset: models.QuerySet[Any], fields: tuple[str, ...], size: int
) -> AsyncIterator[list[Row]]:
    """Async twin of :func:`pages`; the next page is read while this one is used."""
    fetch = sync_to_async(lambda after: list(_page(queryset, fields, after, size)))
    rows: list[Row] = await fetch(None)
    while rows:
        ahead = asyncio.ensure_future(fetch(rows[-1][0])) if len(rows) == size else None
        try:
            yield rows
        except BaseException:  # closed early (aclose) or failed: stop the read-ahead
            if ahead is not None:
                ahead.cancel()
            raise
        rows = await ahead if ahead is not None else []


async def avalues(queryset: models.QuerySet[Any], field: str, size: int) -> AsyncIterator[Any]:
    """One ``field`` per distinct row, streamed in pk order (for the engines' workers)."""
    async for rows in apages(queryset, (field,), size):
        for row in rows:
            yield row[1]
