"""Where a gateway's ``@connections`` API lives: the gateway's own knowledge, asked by id.

A gateway row may name its own management endpoint (``management_endpoint_url``: a custom
domain, another region, the emulator); otherwise the ``management_endpoint_url`` setting's
template applies (AWS's ``https://{api_id}.execute-api.{region}.amazonaws.com/{stage}`` by
default). Either may use ``{api_id}``, ``{region}`` and ``{stage}``.

Senders ask for many gateways at once (``ApiGateway.objects.using(db).endpoints(ids)`` and its
async twin), so a broadcast costs one query for its gateways on the database its rows came
from, whatever the number of recipients.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import models

from aws_ws_async import aws
from aws_ws_async.conf import get_settings

if TYPE_CHECKING:
    from aws_ws_async.models.gateways import ApiGateway  # noqa: F401 (string annotation)

#: Gateway pk (None: a session without a gateway) -> endpoint URL (None: nothing to send to).
Endpoints = dict[int | None, str | None]

_FIELDS = ("pk", "api_id", "stage_name", "management_endpoint_url")


def endpoint_url(api_id: str, stage: str, own: str = "") -> str | None:
    """The ``@connections`` URL of one gateway, or None when it cannot be reached yet.

    A template that needs ``{api_id}`` or ``{stage}`` needs the gateway to have them (it is
    not provisioned otherwise); the settings' template always needs both.
    """
    template = own or get_settings().management_endpoint_url or aws.DEFAULT_MANAGEMENT_ENDPOINT
    if not own and (not api_id or not stage):
        return None
    if ("{api_id}" in template and not api_id) or ("{stage}" in template and not stage):
        return None
    region = ""
    if "{region}" in template:
        region = get_settings().region_name or aws.resolve_region()
    return template.format(api_id=api_id, region=region, stage=stage).rstrip("/")


def _result(rows: Iterable[tuple[Any, ...]]) -> Endpoints:
    found: Endpoints = {None: None}
    for pk, api_id, stage, own in rows:
        found[pk] = endpoint_url(api_id, stage, own or "")
    return found


class ApiGatewayQuerySet(models.QuerySet["ApiGateway"]):
    """Gateway lookups that sending needs; the database is this queryset's (``using()``)."""

    def _rows(self, gateway_ids: Iterable[int | None]) -> models.QuerySet[Any, tuple[Any, ...]]:
        wanted = [g for g in gateway_ids if g is not None]
        return self.filter(pk__in=wanted).order_by().values_list(*_FIELDS)

    def endpoints(self, gateway_ids: Iterable[int | None]) -> Endpoints:
        """Gateway pk -> ``@connections`` URL (None: no gateway, or not provisioned)."""
        return _result(self._rows(gateway_ids))

    async def aendpoints(self, gateway_ids: Iterable[int | None]) -> Endpoints:
        """Async twin of :meth:`endpoints` (one query)."""
        return _result([row async for row in self._rows(gateway_ids)])


#: ``ApiGateway.objects``: the queryset's methods on the manager too.
ApiGatewayManager = models.Manager.from_queryset(ApiGatewayQuerySet)
