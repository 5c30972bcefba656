"""Pull AWS state into the row (``sync_from_aws``): AWS wins, nothing is deleted.

API fields, tags, stage description and deployment, the integration base URL and whether route
responses are on are copied to the gateway; remote-only routes become local additional routes;
local routes AWS no longer has are marked undeployed. All of it is written in one transaction
with pushing switched off, so pulling never bounces back to AWS.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from aws_ws_async.provisioning.claim import claimed
from aws_ws_async.provisioning.clients import apigatewayv2_client
from aws_ws_async.provisioning.drift import API_FIELDS, Difference, compare
from aws_ws_async.provisioning.push import _require_api, _snapshot
from aws_ws_async.provisioning.remote import RemoteState
from aws_ws_async.provisioning.spec import DEFAULT_ROUTES

if TYPE_CHECKING:
    from aws_ws_async.models.gateways import ApiGateway

logger = logging.getLogger("aws_ws_async.provisioning.pull")


async def apull(gateway: ApiGateway, *, dry_run: bool = False) -> list[Difference]:
    """Make the row match AWS; returns the differences taken over (or found, with dry run)."""
    _require_api(gateway)
    if dry_run:
        async with apigatewayv2_client() as client:
            spec, remote = await _snapshot(gateway, client)
        return compare(spec, remote, frozenset(remote.routes))
    async with claimed(gateway, "sync from AWS"):
        async with apigatewayv2_client() as client:
            spec, remote = await _snapshot(gateway, client)
        diffs = compare(spec, remote, frozenset(remote.routes))
        await sync_to_async(_apply, thread_sensitive=True)(gateway, remote)
    logger.info("gateway %s pulled: %s", gateway.pk, "; ".join(map(str, diffs)) or "no changes")
    return diffs


def _apply(gateway: ApiGateway, remote: RemoteState) -> None:
    route_model = gateway.additional_routes.model
    fields: dict[str, Any] = {
        model_field: remote.api.get(aws_name) or ""
        for aws_name, (model_field, _attr) in API_FIELDS.items()
    }
    fields["tags"] = dict(remote.tags)
    fields["api_endpoint"] = remote.api.get("ApiEndpoint", gateway.api_endpoint) or ""
    if remote.stage is not None:
        fields["stage_description"] = remote.stage.get("Description") or ""
        if remote.stage.get("DeploymentId"):
            fields["deployment_id"] = remote.stage["DeploymentId"]
    default = remote.integration_for("$default")
    if default is not None and default.uri.endswith(DEFAULT_ROUTES["$default"]):
        fields["target_base_endpoint"] = default.uri[: -len(DEFAULT_ROUTES["$default"])]
    default_route = remote.routes.get("$default")
    if default_route is not None:
        fields["enable_route_responses"] = bool(default_route.route_response_ids)
    now = timezone.now()
    with transaction.atomic():
        type(gateway)._default_manager.filter(pk=gateway.pk).update(**fields, updated_on=now)
        for name, value in fields.items():
            setattr(gateway, name, value)
        local = {r.route_key: r for r in route_model._default_manager.filter(api_gateway=gateway)}
        for key, route in remote.routes.items():
            if key in DEFAULT_ROUTES:
                continue
            integration = remote.integrations.get(route.integration_id)
            values = {
                "route_id": route.route_id,
                "integration_id": route.integration_id,
                "deployed": True,
            }
            if integration is not None:
                values["integration_url"] = integration.uri
            if key in local:
                route_model._default_manager.filter(pk=local[key].pk).update(
                    **values, updated_on=now
                )
            else:
                # bulk_create skips save(): a pulled route must not be pushed back to AWS.
                route_model._default_manager.bulk_create(
                    [route_model(api_gateway=gateway, name=key[:63], route_key=key, **values)]
                )
        missing = [r.pk for key, r in local.items() if key not in remote.routes]
        if missing:
            route_model._default_manager.filter(pk__in=missing).update(
                deployed=False, route_id="", integration_id="", updated_on=now
            )
    # Adopt remote routes as ours, so a later push may update or delete them.
    resources = dict(gateway.aws_resources or {})
    resources["routes"] = {
        key: {"route_id": r.route_id, "integration_id": r.integration_id}
        for key, r in remote.routes.items()
    }
    type(gateway)._default_manager.filter(pk=gateway.pk).update(aws_resources=resources)
    gateway.aws_resources = resources
    # What was just pulled is what AWS has: a later save() must not push it back.
    gateway.reset_synced_snapshot()
