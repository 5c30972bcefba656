"""Idempotent AWS steps shared by creation and push: each checks the snapshot, creates or
updates only what is missing or different, and records ids (through the run's
:class:`~aws_ws_async.provisioning.recorder.StepRecorder`) as soon as AWS returns them."""

from __future__ import annotations

import logging
from typing import Any

from aws_ws_async.provisioning.recorder import Run, Step
from aws_ws_async.provisioning.remote import RemoteIntegration, RemoteRoute, RemoteState
from aws_ws_async.provisioning.spec import (
    DEFAULT_ROUTES,
    ROUTE_RESPONSE_KEY,
    GatewaySpec,
    RouteSpec,
    integration_params,
    route_params,
    stage_params,
)

logger = logging.getLogger("aws_ws_async.provisioning.steps")


def _integration_differs(
    spec: GatewaySpec, route: RouteSpec, integration: RemoteIntegration
) -> bool:
    desired = integration_params(spec, route, integration.request_parameters)
    return bool(
        desired["IntegrationUri"] != integration.uri
        or desired["IntegrationType"] != integration.integration_type
        or desired["IntegrationMethod"] != integration.method
        or desired["RequestParameters"] != integration.request_parameters
    )


def _shared(remote: RemoteState, integration_id: str, route_key: str) -> bool:
    return any(
        r.integration_id == integration_id for key, r in remote.routes.items() if key != route_key
    )


async def ensure_route(
    client: Any, run: Run, spec: GatewaySpec, route: RouteSpec, remote: RemoteState
) -> bool:
    """Make one route, its integration and its route response match ``route``.

    Returns whether anything in AWS changed (so the caller knows to redeploy).
    """
    api_id = run.state.api_id
    record = run.state.route_records().get(route.route_key, {})
    found: RemoteRoute | None = remote.routes.get(route.route_key)
    integration = remote.integrations.get(found.integration_id) if found else None
    if integration is None and record.get("integration_id") in remote.integrations:
        integration = remote.integrations[record["integration_id"]]
    if (
        integration is not None
        and _integration_differs(spec, route, integration)
        and _shared(remote, integration.integration_id, route.route_key)
    ):
        # Someone pointed this route at another route's integration: changing it would change
        # that route too, so this route gets an integration of its own instead.
        integration = None
    changed = False

    if integration is None:
        response = await client.create_integration(ApiId=api_id, **integration_params(spec, route))
        integration_id = str(response["IntegrationId"])
        await run.record_route(route.route_key, integration_id=integration_id)
        changed = True
    else:
        integration_id = integration.integration_id
        if _integration_differs(spec, route, integration):
            await client.update_integration(
                ApiId=api_id,
                IntegrationId=integration_id,
                **integration_params(spec, route, integration.request_parameters),
            )
            changed = True

    if found is None:
        response = await client.create_route(ApiId=api_id, **route_params(route, integration_id))
        route_id = str(response["RouteId"])
        response_ids: tuple[str, ...] = ()
        changed = True
    else:
        route_id = found.route_id
        response_ids = found.route_response_ids
        expression = (
            ROUTE_RESPONSE_KEY if route.two_way else found.route_response_selection_expression
        )
        if found.integration_id != integration_id or (
            route.two_way and found.route_response_selection_expression != ROUTE_RESPONSE_KEY
        ):
            update: dict[str, Any] = {"Target": f"integrations/{integration_id}"}
            if expression:
                update["RouteResponseSelectionExpression"] = expression
            await client.update_route(ApiId=api_id, RouteId=route_id, **update)
            changed = True
    await run.record_route(route.route_key, integration_id=integration_id, route_id=route_id)

    if route.two_way and not response_ids:
        response = await client.create_route_response(
            ApiId=api_id, RouteId=route_id, RouteResponseKey=ROUTE_RESPONSE_KEY
        )
        await run.record_route(route.route_key, route_response_id=str(response["RouteResponseId"]))
        changed = True
    elif not route.two_way and response_ids:
        for response_id in response_ids:
            await client.delete_route_response(
                ApiId=api_id, RouteId=route_id, RouteResponseId=response_id
            )
        await run.record_route(route.route_key, route_response_id="")
        changed = True

    if route.route_key not in DEFAULT_ROUTES:
        await run.record(
            Step.ROUTE_DEPLOYED,
            route_key=route.route_key,
            route_id=route_id,
            integration_id=integration_id,
        )
    return changed


async def remove_route(client: Any, run: Run, route_key: str, remote: RemoteState) -> bool:
    """Delete a route we created (its route responses, and its integration if unshared)."""
    api_id = run.state.api_id
    found = remote.routes.get(route_key)
    changed = False
    if found is not None:
        for response_id in found.route_response_ids:
            await client.delete_route_response(
                ApiId=api_id, RouteId=found.route_id, RouteResponseId=response_id
            )
        await client.delete_route(ApiId=api_id, RouteId=found.route_id)
        if found.integration_id and not _shared(remote, found.integration_id, route_key):
            await client.delete_integration(ApiId=api_id, IntegrationId=found.integration_id)
        changed = True
    routes = run.state.route_records()
    if routes.pop(route_key, None) is not None:
        await run.record_resource("routes", routes)
    return changed


async def ensure_stage(client: Any, run: Run, spec: GatewaySpec, remote: RemoteState) -> bool:
    if remote.stage is None:
        await client.create_stage(ApiId=run.state.api_id, **stage_params(spec))
        await run.record_resource("stage", spec.stage_name)
        return True
    if (remote.stage.get("Description") or "") != spec.stage_description:
        await client.update_stage(
            ApiId=run.state.api_id,
            StageName=spec.stage_name,
            Description=spec.stage_description,
        )
        return True
    return False


async def deploy(client: Any, run: Run, spec: GatewaySpec, step: Step = Step.REDEPLOYED) -> str:
    """Create a deployment on the stage (this is what makes route changes live)."""
    response = await client.create_deployment(
        ApiId=run.state.api_id,
        StageName=spec.stage_name,
        Description="Deployed by aws_ws_async",
    )
    deployment_id = str(response["DeploymentId"])
    await run.record(step, deployment_id=deployment_id)
    logger.info("%s deployed as %s", run.state.label, deployment_id)
    return deployment_id
