"""Provisioning orchestration of the gateway aggregate: validate, claim, build the spec, run
the engine with the row recorder, and apply what a pull brings back.

``aws_ws_async.provisioning`` does the AWS side from plain values; this module is where those
values come from (the row and its additional routes) and where the steps land (the row, through
:class:`~aws_ws_async.models.gateway_state.RowRecorder`). The ``ApiGateway`` methods
(``acreate_gateway``, ``apush_to_aws``...) are thin calls into the functions here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from aws_ws_async.exceptions import ApiGatewaySyncError
from aws_ws_async.models.gateway_state import (
    ProvisioningStatus,
    RowRecorder,
    claimed,
    manager_of,
    state_of,
)
from aws_ws_async.provisioning import (
    Difference,
    GatewaySpec,
    Pulled,
    Run,
    acreate_api,
    acreate_domain,
    adetect_drift,
    aplan_push,
    apull,
    apush,
    build_spec,
)

if TYPE_CHECKING:  # annotations only: gateways.py imports this module
    from aws_ws_async.models.gateways import ApiGateway, ApiGatewayAdditionalRoute

logger = logging.getLogger("aws_ws_async.models.gateway_provisioning")

#: At claim time, ``pending``/``failed`` become ``creating``; progress is kept otherwise.
_CLAIM_STATUS = Case(
    When(
        provisioning_status__in=[ProvisioningStatus.PENDING, ProvisioningStatus.FAILED],
        then=Value(ProvisioningStatus.CREATING),
    ),
    default=F("provisioning_status"),
)


def spec_of(
    gateway: ApiGateway, additional_routes: Iterable[ApiGatewayAdditionalRoute] = ()
) -> GatewaySpec:
    """The engine's plain :class:`GatewaySpec` of a gateway row and its additional routes."""
    return build_spec(
        name=gateway.api_name,
        description=gateway.api_description,
        target_base_endpoint=gateway.target_base_endpoint or "",
        route_selection_expression=gateway.route_selection_expression,
        api_key_selection_expression=gateway.api_key_selection_expression,
        stage_name=gateway.stage_name,
        stage_description=gateway.stage_description,
        tags=gateway.tags,
        enable_route_responses=gateway.enable_route_responses,
        additional_routes=[(r.route_key, r.integration_url) for r in additional_routes],
        domain_name=gateway.domain_name,
        certificate_arn=gateway.certificate_arn,
        hosted_zone_id=gateway.hosted_zone_id,
    )


async def _aspec(gateway: ApiGateway) -> GatewaySpec:
    routes = gateway.additional_routes.using(gateway._state.db).order_by("pk")
    return spec_of(gateway, [r async for r in routes])


def _require_api(gateway: ApiGateway) -> None:
    if not gateway.api_id:
        raise ApiGatewaySyncError(
            f"Gateway {gateway.pk} has no API in AWS yet: create it first (create_api_gateway)."
        )


async def acreate_gateway(gateway: ApiGateway) -> list[str]:
    """Create (or finish creating) the WebSocket API; returns the steps this run performed."""
    status = ProvisioningStatus
    if not gateway.target_base_endpoint:
        raise ApiGatewaySyncError(
            f"Gateway {gateway.pk}: set target_base_endpoint (the URL of your WebSocketView) "
            "before creating the API."
        )

    def on_error() -> dict[str, Any]:
        if gateway.provisioning_status in {status.CREATING, status.PENDING}:
            return {"provisioning_status": status.FAILED}
        return {}

    async with claimed(
        gateway, "create gateway", on_error=on_error, provisioning_status=_CLAIM_STATUS
    ) as claim:
        if gateway.is_deployed:
            return []
        spec = await _aspec(gateway)
        return await acreate_api(spec, Run(state_of(gateway), RowRecorder(claim)))


async def acreate_custom_domain(gateway: ApiGateway) -> list[str]:
    """Create (or finish creating) the custom domain; returns the steps this run performed."""
    if not gateway.domain_name or not gateway.certificate_arn:
        raise ApiGatewaySyncError(
            f"Gateway {gateway.pk}: set domain_name and certificate_arn (an ACM certificate in "
            "the gateway's region) before creating the custom domain."
        )
    if not gateway.is_deployed:
        raise ApiGatewaySyncError(
            f"Gateway {gateway.pk}: create and deploy the API before its custom domain."
        )
    async with claimed(gateway, "create custom domain") as claim:
        run = Run(state_of(gateway), RowRecorder(claim))
        return await acreate_domain(spec_of(gateway), run)


async def apush_to_aws(
    gateway: ApiGateway,
    *,
    fields: Iterable[str] | None = None,
    route_keys: Iterable[str] | None = None,
    only: Iterable[str] | None = None,
    dry_run: bool = False,
) -> list[Difference]:
    """Make AWS match the row; returns the differences fixed (or, with ``dry_run``, found)."""
    _require_api(gateway)
    narrowing: dict[str, Any] = {"fields": fields, "route_keys": route_keys, "only": only}
    if dry_run:
        return await aplan_push(await _aspec(gateway), state_of(gateway), **narrowing)
    async with claimed(gateway, "sync to AWS") as claim:
        spec = await _aspec(gateway)
        return await apush(spec, Run(state_of(gateway), RowRecorder(claim)), **narrowing)


async def adetect_gateway_drift(gateway: ApiGateway) -> list[Difference]:
    """Every difference between the row and AWS (including routes added by hand in AWS)."""
    _require_api(gateway)
    return await adetect_drift(await _aspec(gateway), state_of(gateway))


async def apull_from_aws(gateway: ApiGateway, *, dry_run: bool = False) -> list[Difference]:
    """Make the row match AWS; returns the differences taken over (or found, with dry run)."""
    _require_api(gateway)
    if dry_run:
        diffs, _pulled = await apull(await _aspec(gateway), state_of(gateway))
        return diffs
    async with claimed(gateway, "sync from AWS"):
        diffs, pulled = await apull(await _aspec(gateway), state_of(gateway))
        await sync_to_async(apply_pulled, thread_sensitive=True)(gateway, pulled)
    logger.info("gateway %s pulled: %s", gateway.pk, "; ".join(map(str, diffs)) or "no changes")
    return diffs


def apply_pulled(gateway: ApiGateway, pulled: Pulled) -> None:
    """Write what a pull brought back, in one transaction, without pushing it back to AWS."""
    db = gateway._state.db
    route_model = gateway.additional_routes.model
    routes = route_model._default_manager.db_manager(db)
    now = timezone.now()
    with transaction.atomic(using=db):
        manager_of(gateway).filter(pk=gateway.pk).update(**pulled.fields, updated_on=now)
        for name, value in pulled.fields.items():
            setattr(gateway, name, value)
        local = {r.route_key: r for r in routes.filter(api_gateway=gateway)}
        for route in pulled.routes:
            values: dict[str, Any] = {
                "route_id": route.route_id,
                "integration_id": route.integration_id,
                "deployed": True,
            }
            if route.integration_url is not None:
                values["integration_url"] = route.integration_url
            if route.route_key in local:
                routes.filter(pk=local[route.route_key].pk).update(**values, updated_on=now)
            else:
                # bulk_create skips save(): a pulled route must not be pushed back to AWS.
                key = route.route_key
                routes.bulk_create(
                    [route_model(api_gateway=gateway, name=key[:63], route_key=key, **values)]
                )
        missing = [r.pk for key, r in local.items() if key not in pulled.remote_route_keys]
        if missing:
            routes.filter(pk__in=missing).update(
                deployed=False, route_id="", integration_id="", updated_on=now
            )
    # Adopt remote routes as ours, so a later push may update or delete them.
    resources = {**(gateway.aws_resources or {}), "routes": pulled.route_records}
    manager_of(gateway).filter(pk=gateway.pk).update(aws_resources=resources)
    gateway.aws_resources = resources
    # What was just pulled is what AWS has: a later save() must not push it back.
    gateway.reset_synced_snapshot()


async def aupdate_route(route: ApiGatewayAdditionalRoute) -> list[Difference]:
    """Create, repair or update one additional route in AWS, then redeploy."""
    gateway = await _agateway_of(route)
    return await apush_to_aws(gateway, route_keys={route.route_key})


async def adelete_route(route: ApiGatewayAdditionalRoute) -> list[Difference]:
    """Delete the route's row, then its AWS route and integration; redeploy."""
    gateway = await _agateway_of(route)
    key = route.route_key
    await sync_to_async(route.delete)(push_to_aws=False)
    return await apush_to_aws(gateway, route_keys={key})


async def _agateway_of(route: ApiGatewayAdditionalRoute) -> ApiGateway:
    gateway_model = route._meta.get_field("api_gateway").related_model
    manager = gateway_model._default_manager.db_manager(route._state.db)
    return cast("ApiGateway", await manager.aget(pk=route.api_gateway_id))


__all__ = [
    "acreate_custom_domain",
    "acreate_gateway",
    "adelete_route",
    "adetect_gateway_drift",
    "apply_pulled",
    "apull_from_aws",
    "apush_to_aws",
    "aupdate_route",
    "spec_of",
]
