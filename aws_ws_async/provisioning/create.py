"""Create a gateway in AWS: API, integrations and routes, stage, deployment. Resumable.

Each step is recorded on the row as soon as AWS answers, so a run that fails (or crashes) midway
is finished by the next run without duplicating anything: the API is created once (its id is on
the row), routes are looked up by key before any is created, and the stage is reused.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aws_ws_async.exceptions import ApiGatewaySyncError
from aws_ws_async.provisioning.claim import claimed
from aws_ws_async.provisioning.clients import apigatewayv2_client
from aws_ws_async.provisioning.remote import RemoteState, fetch_remote_state
from aws_ws_async.provisioning.spec import check_hosts, create_api_params, gateway_spec
from aws_ws_async.provisioning.steps import deploy, ensure_route, ensure_stage

if TYPE_CHECKING:
    from aws_ws_async.models.gateways import ApiGateway

logger = logging.getLogger("aws_ws_async.provisioning.create")


def _status() -> Any:
    from aws_ws_async.models.gateways import ProvisioningStatus

    return ProvisioningStatus


def _claim_status() -> Any:
    """At claim time, ``pending``/``failed`` become ``creating``; progress is kept otherwise."""
    from django.db.models import Case, F, Value, When

    status = _status()
    return Case(
        When(provisioning_status__in=[status.PENDING, status.FAILED], then=Value(status.CREATING)),
        default=F("provisioning_status"),
    )


async def acreate_gateway(gateway: ApiGateway) -> list[str]:
    """Create (or finish creating) the WebSocket API; returns the steps this run performed.

    Raises :class:`ProvisioningInProgress` if another run holds the claim, and
    :class:`ApiGatewaySyncError` (with ``last_error`` stored) if a step fails.
    """
    status = _status()
    if not gateway.target_base_endpoint:
        raise ApiGatewaySyncError(
            f"Gateway {gateway.pk}: set target_base_endpoint (the URL of your WebSocketView) "
            "before creating the API."
        )

    def on_error() -> dict[str, Any]:
        if gateway.provisioning_status in {status.CREATING, status.PENDING}:
            return {"provisioning_status": status.FAILED}
        return {}

    steps: list[str] = []
    async with claimed(
        gateway, "create gateway", on_error=on_error, provisioning_status=_claim_status()
    ) as claim:
        if gateway.is_deployed:
            return steps
        routes = [r async for r in gateway.additional_routes.order_by("pk")]
        spec = gateway_spec(gateway, routes)
        check_hosts(spec)
        async with apigatewayv2_client() as client:
            if not gateway.api_id:
                response = await client.create_api(**create_api_params(spec))
                await claim.record(
                    api_id=response["ApiId"],
                    api_endpoint=response.get("ApiEndpoint", ""),
                    api_created=True,
                    provisioning_status=status.API_CREATED,
                )
                steps.append(f"created API {gateway.api_id}")
                # A brand-new API has nothing in it: no need to read it back.
                remote = RemoteState(gateway.api_id, response, {}, {}, {}, None)
            else:
                remote = await fetch_remote_state(client, gateway.api_id, spec.stage_name)
            for route in spec.routes:
                if await ensure_route(client, claim, spec, route, remote):
                    steps.append(f"created route {route.route_key}")
            await claim.record(provisioning_status=status.ROUTES_CREATED)
            if await ensure_stage(client, claim, spec, remote):
                steps.append(f"created stage {spec.stage_name}")
            deployment_id = await deploy(client, claim, spec, provisioning_status=status.DEPLOYED)
            steps.append(f"deployed {deployment_id}")
    logger.info("gateway %s created: %s", gateway.pk, "; ".join(steps))
    return steps
