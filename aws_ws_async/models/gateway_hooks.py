"""Push model changes to AWS after the surrounding transaction commits.

Saving a gateway or route must never call AWS inside the caller's transaction (a rollback would
leave AWS changed and the row not), and must never fail the save itself: a failed push is logged
and kept in the gateway's ``last_error``, and ``push_to_aws`` or the admin action repairs it.

Saves of one gateway inside one transaction (the admin saves the gateway and each inline route)
are merged into a single push, so the change form costs one read of AWS and one deployment.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from typing import Any

from django.db import models, transaction

from aws_ws_async.exceptions import ApiGatewaySyncError
from aws_ws_async.models.gateway_provisioning import apush_to_aws
from aws_ws_async.sync import call_outside_transaction

logger = logging.getLogger("aws_ws_async.models.gateway_hooks")

_pending: weakref.WeakKeyDictionary[Any, dict[int, _PendingPush]] = weakref.WeakKeyDictionary()


class _PendingPush:
    """One queued push; ``None`` means "everything" for both narrowing sets."""

    def __init__(self, model: type[models.Model], gateway_pk: int, using: str | None) -> None:
        self.model, self.gateway_pk, self.using = model, gateway_pk, using
        self.fields: set[str] | None = set()
        self.route_keys: set[str] | None = set()

    def merge(self, fields: Iterable[str] | None, route_keys: Iterable[str] | None) -> None:
        if fields is None and route_keys is None:
            self.fields = self.route_keys = None
        if fields is not None and self.fields is not None:
            self.fields |= set(fields)
        if route_keys is not None and self.route_keys is not None:
            self.route_keys |= set(route_keys)

    def run(self) -> None:
        manager: Any = self.model._default_manager.db_manager(self.using)
        gateway = manager.filter(pk=self.gateway_pk).first()
        if gateway is None or not gateway.is_deployed:
            return
        try:
            call_outside_transaction(
                apush_to_aws, gateway, fields=self.fields, route_keys=self.route_keys
            )
        except ApiGatewaySyncError as exc:
            logger.warning("push of gateway %s after commit failed: %s", self.gateway_pk, exc)


def _still_queued(connection: Any, entry: _PendingPush) -> bool:
    """Whether ``entry.run`` is still waiting in this connection's on-commit queue."""
    queue = getattr(connection, "run_on_commit", None) or []
    return any(getattr(item[1], "__self__", None) is entry for item in queue)


def push_after_commit(
    model: type[models.Model],
    gateway_pk: int,
    *,
    fields: Iterable[str] | None = None,
    route_keys: Iterable[str] | None = None,
    using: str | None = None,
) -> None:
    """Queue a narrowed push of one gateway for when ``using``'s transaction commits."""
    connection = transaction.get_connection(using)
    if connection.in_atomic_block:
        queued = _pending.setdefault(connection, {})
        entry = queued.get(gateway_pk)
        if entry is not None and _still_queued(connection, entry):
            entry.merge(fields, route_keys)
            return
        entry = _PendingPush(model, gateway_pk, using)
        entry.merge(fields, route_keys)
        queued[gateway_pk] = entry
    else:
        entry = _PendingPush(model, gateway_pk, using)
        entry.merge(fields, route_keys)
    transaction.on_commit(entry.run, using=using)
