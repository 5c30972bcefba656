"""Push model changes to AWS after the surrounding transaction commits.

Saving a gateway or route must never call AWS inside the caller's transaction (a rollback would
leave AWS changed and the row not), and must never fail the save itself: a failed push is logged
and kept in the gateway's ``last_error``, and ``sync_to_aws`` or the admin action repairs it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

from aws_ws_async.exceptions import ApiGatewaySyncError

logger = logging.getLogger("aws_ws_async.provisioning.hooks")


def push_after_commit(
    gateway_pk: int,
    *,
    fields: Iterable[str] | None = None,
    route_keys: Iterable[str] | None = None,
) -> None:
    """Queue a narrowed push of one gateway for when the current transaction commits."""
    field_set = set(fields) if fields is not None else None
    key_set = set(route_keys) if route_keys is not None else None

    def push() -> None:
        from aws_ws_async.models.gateways import ApiGateway
        from aws_ws_async.provisioning.bridge import run_sync
        from aws_ws_async.provisioning.push import apush

        gateway = ApiGateway._default_manager.filter(pk=gateway_pk).first()
        if gateway is None or not gateway.api_id:
            return
        try:
            run_sync(apush, gateway, fields=field_set, route_keys=key_set)
        except ApiGatewaySyncError as exc:
            logger.warning("push of gateway %s after commit failed: %s", gateway_pk, exc)

    transaction.on_commit(push)
