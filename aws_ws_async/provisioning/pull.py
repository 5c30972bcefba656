"""Pull AWS state (``pull_from_aws``): what the row should become when AWS wins.

The engine reads AWS and turns it into plain values (:class:`Pulled`): API fields, tags, stage
description and deployment, the integration base URL, whether route responses are on, and the
additional routes AWS has. Writing them (in one transaction, with pushing switched off, so a
pull never bounces back to AWS) is the gateway aggregate's job in ``aws_ws_async.models``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_ws_async.provisioning.clients import apigatewayv2_client
from aws_ws_async.provisioning.drift import API_FIELDS, Difference, compare
from aws_ws_async.provisioning.push import fetch_snapshot
from aws_ws_async.provisioning.recorder import GatewayState
from aws_ws_async.provisioning.remote import RemoteState
from aws_ws_async.provisioning.spec import DEFAULT_ROUTES, GatewaySpec


@dataclass(frozen=True)
class PulledRoute:
    """An additional route as AWS has it (``integration_url`` ``None``: integration missing)."""

    route_key: str
    route_id: str
    integration_id: str
    integration_url: str | None


@dataclass(frozen=True)
class Pulled:
    """What the row takes over from AWS."""

    #: Gateway field name -> value AWS has.
    fields: dict[str, Any]
    #: Every additional (non-lifecycle, non-``$default``) route AWS has.
    routes: tuple[PulledRoute, ...]
    #: Every route key AWS has: local routes missing here are marked undeployed.
    remote_route_keys: frozenset[str]
    #: The new ``aws_resources["routes"]``: every remote route is adopted as ours.
    route_records: dict[str, dict[str, str]]


async def apull(spec: GatewaySpec, state: GatewayState) -> tuple[list[Difference], Pulled]:
    """The differences the row would take over from AWS, and the values that do it."""
    async with apigatewayv2_client() as client:
        remote = await fetch_snapshot(client, spec, state)
    return compare(spec, remote, frozenset(remote.routes)), pulled(remote, state)


def pulled(remote: RemoteState, state: GatewayState) -> Pulled:
    """Turn a snapshot of AWS into the row's new values (pure)."""
    fields: dict[str, Any] = {
        model_field: remote.api.get(aws_name) or ""
        for aws_name, (model_field, _attr) in API_FIELDS.items()
    }
    fields["tags"] = dict(remote.tags)
    fields["api_endpoint"] = remote.api.get("ApiEndpoint", state.api_endpoint) or ""
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
    routes = []
    for key, route in remote.routes.items():
        if key in DEFAULT_ROUTES:
            continue
        integration = remote.integrations.get(route.integration_id)
        routes.append(
            PulledRoute(
                route_key=key,
                route_id=route.route_id,
                integration_id=route.integration_id,
                integration_url=integration.uri if integration is not None else None,
            )
        )
    return Pulled(
        fields=fields,
        routes=tuple(routes),
        remote_route_keys=frozenset(remote.routes),
        route_records={
            key: {"route_id": r.route_id, "integration_id": r.integration_id}
            for key, r in remote.routes.items()
        },
    )
