"""Read the current state of one WebSocket API from AWS into plain data.

One read per resource kind (API, tags, routes, integrations, route responses, stage), following
``NextToken`` pages, so drift detection, push and pull all compare against the same snapshot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aws_ws_async.provisioning.clients import api_arn, error_code, region_of
from aws_ws_async.provisioning.spec import LIFECYCLE_ROUTES

NOT_FOUND = "NotFoundException"


@dataclass(frozen=True)
class RemoteIntegration:
    integration_id: str
    integration_type: str
    method: str
    uri: str
    request_parameters: dict[str, str]


@dataclass(frozen=True)
class RemoteRoute:
    route_id: str
    route_key: str
    integration_id: str
    route_response_selection_expression: str
    route_response_ids: tuple[str, ...] = ()


@dataclass
class RemoteState:
    api_id: str
    api: dict[str, Any]
    tags: dict[str, str]
    routes: dict[str, RemoteRoute]
    integrations: dict[str, RemoteIntegration]
    stage: dict[str, Any] | None
    #: (api id, stage) pairs mapped on the custom domain; ``None`` when not checked. A domain
    #: that no longer exists reads as no mappings.
    mappings: list[tuple[str, str]] | None = None

    def integration_for(self, route_key: str) -> RemoteIntegration | None:
        route = self.routes.get(route_key)
        if route is None:
            return None
        return self.integrations.get(route.integration_id)


async def paginate(call: Callable[..., Awaitable[dict[str, Any]]], **kwargs: Any) -> list[Any]:
    """All ``Items`` of a paginated ``Get*`` operation."""
    items: list[Any] = []
    token: str | None = None
    while True:
        page = await call(**kwargs, **({"NextToken": token} if token else {}))
        items.extend(page.get("Items", []))
        token = page.get("NextToken")
        if not token:
            return items


def _integration_id(target: str) -> str:
    return target.split("/", 1)[1] if target.startswith("integrations/") else ""


async def fetch_remote_state(client: Any, api_id: str, stage_name: str) -> RemoteState:
    """Snapshot the API, its tags, routes (+ route responses), integrations and stage."""
    api = await client.get_api(ApiId=api_id)
    api.pop("ResponseMetadata", None)
    tags = api.get("Tags")
    if tags is None:
        tags = (await client.get_tags(ResourceArn=api_arn(region_of(client), api_id))).get(
            "Tags", {}
        )
    integrations = {
        item["IntegrationId"]: RemoteIntegration(
            integration_id=item["IntegrationId"],
            integration_type=item.get("IntegrationType", ""),
            method=item.get("IntegrationMethod", ""),
            uri=item.get("IntegrationUri", ""),
            request_parameters=dict(item.get("RequestParameters") or {}),
        )
        for item in await paginate(client.get_integrations, ApiId=api_id)
    }
    routes: dict[str, RemoteRoute] = {}
    for item in await paginate(client.get_routes, ApiId=api_id):
        responses: tuple[str, ...] = ()
        if item["RouteKey"] not in LIFECYCLE_ROUTES:
            found = await paginate(
                client.get_route_responses, ApiId=api_id, RouteId=item["RouteId"]
            )
            responses = tuple(r["RouteResponseId"] for r in found)
        routes[item["RouteKey"]] = RemoteRoute(
            route_id=item["RouteId"],
            route_key=item["RouteKey"],
            integration_id=_integration_id(item.get("Target", "")),
            route_response_selection_expression=item.get("RouteResponseSelectionExpression", ""),
            route_response_ids=responses,
        )
    stage: dict[str, Any] | None
    try:
        stage = await client.get_stage(ApiId=api_id, StageName=stage_name)
        stage.pop("ResponseMetadata", None)
    except Exception as exc:
        if error_code(exc) != NOT_FOUND:
            raise
        stage = None
    return RemoteState(
        api_id=api_id,
        api=api,
        tags={k: v for k, v in dict(tags).items() if not k.startswith("aws:")},
        routes=routes,
        integrations=integrations,
        stage=stage,
    )


async def fetch_mappings(client: Any, domain_name: str) -> list[tuple[str, str]]:
    """The API mappings of a custom domain ([] if the domain is gone)."""
    try:
        items = await paginate(client.get_api_mappings, DomainName=domain_name)
    except Exception as exc:
        if error_code(exc) != NOT_FOUND:
            raise
        return []
    return [(str(m.get("ApiId", "")), str(m.get("Stage", ""))) for m in items]
