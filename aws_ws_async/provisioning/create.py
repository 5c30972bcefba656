"""Create a gateway in AWS: API, integrations and routes, stage, deployment. Resumable.

Each step is reported to the run's recorder as soon as AWS answers, so a run that fails (or
crashes) midway is finished by the next run without duplicating anything: the API is created
once (its id is in the state), routes are looked up by key before any is created, and the stage
is reused.
"""

from __future__ import annotations

import logging

from aws_ws_async.provisioning.clients import apigatewayv2_client
from aws_ws_async.provisioning.recorder import Run, Step
from aws_ws_async.provisioning.remote import RemoteState, fetch_remote_state
from aws_ws_async.provisioning.spec import GatewaySpec, check_hosts, create_api_params
from aws_ws_async.provisioning.steps import deploy, ensure_route, ensure_stage

logger = logging.getLogger("aws_ws_async.provisioning.create")


async def acreate_api(spec: GatewaySpec, run: Run) -> list[str]:
    """Create (or finish creating) the WebSocket API of ``spec``; returns the steps performed.

    Starts from ``run.state`` (an ``api_id`` there means the API exists and is completed, not
    created again) and ends with :attr:`Step.DEPLOYED`.
    """
    check_hosts(spec)
    steps: list[str] = []
    state = run.state
    async with apigatewayv2_client() as client:
        if not state.api_id:
            response = await client.create_api(**create_api_params(spec))
            await run.record(
                Step.API_CREATED,
                api_id=str(response["ApiId"]),
                api_endpoint=str(response.get("ApiEndpoint", "")),
            )
            steps.append(f"created API {state.api_id}")
            # A brand-new API has nothing in it: no need to read it back.
            remote = RemoteState(state.api_id, response, {}, {}, {}, None)
        else:
            remote = await fetch_remote_state(client, state.api_id, spec.stage_name)
        for route in spec.routes:
            if await ensure_route(client, run, spec, route, remote):
                steps.append(f"created route {route.route_key}")
        await run.record(Step.ROUTES_CREATED)
        if await ensure_stage(client, run, spec, remote):
            steps.append(f"created stage {spec.stage_name}")
        deployment_id = await deploy(client, run, spec, Step.DEPLOYED)
        steps.append(f"deployed {deployment_id}")
    logger.info("%s created: %s", state.label, "; ".join(steps))
    return steps
