"""Push local state to AWS (``sync_to_aws``), detect drift, and rotate the gateway secret.

All three compare the row with a fresh snapshot of AWS (:mod:`.drift`); a push then fixes exactly
the differences it found and redeploys once if anything changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from aws_ws_async.exceptions import ApiGatewaySyncError
from aws_ws_async.provisioning.claim import claimed
from aws_ws_async.provisioning.clients import (
    api_arn,
    apigatewayv2_client,
    error_code,
    region_of,
)
from aws_ws_async.provisioning.drift import Difference, compare, groups_for_fields
from aws_ws_async.provisioning.remote import (
    NOT_FOUND,
    RemoteState,
    fetch_mappings,
    fetch_remote_state,
)
from aws_ws_async.provisioning.spec import (
    GatewaySpec,
    api_mapping_params,
    check_hosts,
    gateway_spec,
    update_api_params,
)
from aws_ws_async.provisioning.steps import (
    deploy,
    ensure_route,
    ensure_stage,
    remove_route,
    route_records,
)

if TYPE_CHECKING:
    from aws_ws_async.models.gateways import ApiGateway
    from aws_ws_async.provisioning.claim import Claim

logger = logging.getLogger("aws_ws_async.provisioning.push")

ROUTE_GROUPS = frozenset({"route", "integration", "route_response"})


def _require_api(gateway: ApiGateway) -> None:
    if not gateway.api_id:
        raise ApiGatewaySyncError(
            f"Gateway {gateway.pk} has no API in AWS yet: create it first (createApiGateway)."
        )


async def _snapshot(gateway: ApiGateway, client: Any) -> tuple[GatewaySpec, RemoteState]:
    routes = [r async for r in gateway.additional_routes.order_by("pk")]
    spec = gateway_spec(gateway, routes)
    remote = await fetch_remote_state(client, gateway.api_id, spec.stage_name)
    if gateway.custom_domain_created and gateway.domain_name:
        remote.mappings = await fetch_mappings(client, gateway.domain_name)
    return spec, remote


def _managed_keys(gateway: ApiGateway) -> frozenset[str]:
    routes = (gateway.aws_resources or {}).get("routes")
    return frozenset(routes) if isinstance(routes, dict) else frozenset()


def _select(
    diffs: list[Difference],
    groups: set[str] | None,
    route_keys: set[str] | None,
    fields: set[str] | None,
) -> list[Difference]:
    """Narrow ``diffs``: to what changed fields feed and/or to some routes, then to fields."""
    selected = [d for d in diffs if d.group != "unmanaged"]
    if groups is not None or route_keys is not None:
        selected = [
            d
            for d in selected
            if (groups is not None and d.group in groups)
            or (route_keys is not None and d.group in ROUTE_GROUPS and d.route_key in route_keys)
        ]
    if fields is not None:
        selected = [d for d in selected if d.field in fields]
    return selected


async def adetect_drift(gateway: ApiGateway) -> list[Difference]:
    """Every difference between the row and AWS (including routes added by hand in AWS)."""
    _require_api(gateway)
    async with apigatewayv2_client() as client:
        try:
            spec, remote = await _snapshot(gateway, client)
        except Exception as exc:
            if error_code(exc) != NOT_FOUND:
                raise
            return [Difference("api", "api", "exists", True, False)]
    return compare(spec, remote, _managed_keys(gateway))


async def apush(
    gateway: ApiGateway,
    *,
    fields: Iterable[str] | None = None,
    route_keys: Iterable[str] | None = None,
    only: Iterable[str] | None = None,
    dry_run: bool = False,
) -> list[Difference]:
    """Make AWS match the row; returns the differences fixed (or, with ``dry_run``, found).

    ``fields`` narrows the push to what those model fields feed (a save pushes only what it
    changed); ``route_keys`` to those routes; ``only`` to those difference fields (e.g.
    ``{"request_parameters"}`` for secret rotation). Routes added by hand in AWS are never
    deleted; routes we created and the row no longer has are.
    """
    _require_api(gateway)
    groups = groups_for_fields(set(fields)) if fields is not None else None
    keys = set(route_keys) if route_keys is not None else None
    only_fields = set(only) if only is not None else None
    if dry_run:
        async with apigatewayv2_client() as client:
            spec, remote = await _snapshot(gateway, client)
        return _select(compare(spec, remote, _managed_keys(gateway)), groups, keys, only_fields)

    async with claimed(gateway, "sync to AWS") as claim, apigatewayv2_client() as client:
        spec, remote = await _snapshot(gateway, client)
        diffs = _select(compare(spec, remote, _managed_keys(gateway)), groups, keys, only_fields)
        if diffs:
            check_hosts(spec)
            await _apply(client, claim, spec, remote, diffs)
            await deploy(client, claim, spec)
    if diffs:
        logger.info("gateway %s pushed: %s", gateway.pk, "; ".join(map(str, diffs)))
    return diffs


async def _apply(
    client: Any, claim: Claim, spec: GatewaySpec, remote: RemoteState, diffs: list[Difference]
) -> None:
    api_id = claim.gateway.api_id
    kinds = {d.group for d in diffs}
    if "api" in kinds:
        await client.update_api(**update_api_params(spec, api_id))
    if "tags" in kinds:
        arn = api_arn(region_of(client), api_id)
        removed = sorted(set(remote.tags) - set(spec.tags))
        if removed:
            await client.untag_resource(ResourceArn=arn, TagKeys=removed)
        if spec.tags:
            await client.tag_resource(ResourceArn=arn, Tags=dict(spec.tags))
    for key in dict.fromkeys(d.route_key for d in diffs if d.group in ROUTE_GROUPS):
        route = spec.route(key)
        if route is not None:
            await ensure_route(client, claim, spec, route, remote)
        elif key in route_records(claim) or key in remote.routes:
            await remove_route(client, claim, key, remote)
            await claim.gateway.additional_routes.filter(route_key=key).aupdate(
                deployed=False, route_id="", integration_id=""
            )
    if "stage" in kinds:
        await ensure_stage(client, claim, spec, remote)
    if "domain" in kinds and remote.mappings is not None:
        response = await client.create_api_mapping(**api_mapping_params(spec, api_id))
        await claim.record(api_mapping_id=response["ApiMappingId"])


async def arotate_secret(gateway: ApiGateway, *, dry_run: bool = False) -> list[Difference]:
    """Rewrite the secret (and connection id) header mapping on every integration; redeploy."""
    return await apush(gateway, only={"request_parameters"}, dry_run=dry_run)
