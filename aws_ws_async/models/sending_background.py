"""Closing in the background (logout): mark the rows now, close the connections, don't wait.

Used by the logout and user-invalidated receivers, which must not hold the request for the
``DELETE @connections`` round trips.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

from django.db import models

from aws_ws_async import sync
from aws_ws_async.delivery import DeliveryReport
from aws_ws_async.models.broadcast import FanOut
from aws_ws_async.models.endpoints import Endpoints
from aws_ws_async.models.gateways import ApiGateway
from aws_ws_async.models.marks import mark_ids
from aws_ws_async.models.operations import Operation, delivery_policy


def submit_close(
    queryset: models.QuerySet[Any], op: Operation
) -> concurrent.futures.Future[DeliveryReport]:
    """Mark the connected rows now (caller's thread), close them on the portal; don't wait."""
    db, model = queryset.db, queryset.model
    rows = list(
        queryset.filter(connected=True)
        .order_by()
        .values_list("connection_id", "api_gateway_id")
        .distinct()
    )
    groups: dict[int | None, list[str]] = {}
    for connection_id, gateway_id in rows:
        groups.setdefault(gateway_id, []).append(connection_id)
    mark_ids(model, db, [cid for cid, _ in rows], op.reason)
    endpoints: Endpoints = {None: None}
    if groups:
        endpoints = ApiGateway.objects.using(db).endpoints(groups)
    fan = FanOut(op, groups, endpoints, delivery_policy())
    return sync.submit(fan.run)
