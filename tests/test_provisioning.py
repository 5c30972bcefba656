"""Provisioning end to end against moto (server mode) behind the local endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from aws_ws_async.models import ApiGateway, ProvisioningStatus
from tests.fixtures_provisioning import SECRET, LocalApiGateway

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "https://backend.example.com/ws/"


def routes_by_key(client: Any, api_id: str) -> dict[str, dict[str, Any]]:
    return {r["RouteKey"]: r for r in client.get_routes(ApiId=api_id)["Items"]}


def integration_of(client: Any, api_id: str, route: dict[str, Any]) -> dict[str, Any]:
    integration_id = route["Target"].split("/", 1)[1]
    return client.get_integration(ApiId=api_id, IntegrationId=integration_id)


async def test_create_gateway_builds_the_whole_api(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    moto_apigw: Any,
    local_apigw: LocalApiGateway,
) -> None:
    steps = await new_gateway.acreate_gateway()

    gateway = await ApiGateway.objects.aget(pk=new_gateway.pk)
    assert gateway.provisioning_status == ProvisioningStatus.DEPLOYED
    assert gateway.is_deployed
    assert gateway.last_error == ""
    assert gateway.provisioning_claim == ""
    assert gateway.api_endpoint.startswith("wss://") or gateway.api_endpoint.startswith("https://")
    assert any("deployed" in step for step in steps)

    api = moto_apigw.get_api(ApiId=gateway.api_id)
    assert api["ProtocolType"] == "WEBSOCKET"
    assert api["RouteSelectionExpression"] == "$request.body.action"
    assert api["Tags"] == {"team": "web"}
    sent = local_apigw.calls("POST", "/v2/apis")[0]
    assert "routeKey" not in sent
    assert "target" not in sent

    routes = routes_by_key(moto_apigw, gateway.api_id)
    assert set(routes) == {"$connect", "$disconnect", "$default", "sendmessage"}
    expected_uri = {
        "$connect": BASE + "connect",
        "$disconnect": BASE + "disconnect",
        "$default": BASE + "default",
        "sendmessage": BASE + "sendmessage",
    }
    for key, route in routes.items():
        assert route["AuthorizationType"] == "NONE"
        integration = integration_of(moto_apigw, gateway.api_id, route)
        assert integration["IntegrationType"] == "HTTP_PROXY"
        assert integration["IntegrationMethod"] == "POST"
        assert integration["IntegrationUri"] == expected_uri[key]
        assert integration["RequestParameters"] == {
            "integration.request.header.Connectionid": "context.connectionId",
            "integration.request.header.X-Ws-Gateway-Secret": f"'{SECRET}'",
        }
    assert len(moto_apigw.get_integrations(ApiId=gateway.api_id)["Items"]) == 4

    stage = moto_apigw.get_stage(ApiId=gateway.api_id, StageName="production")
    assert stage["Description"] == "live"
    deployments = local_apigw.calls("POST", f"/v2/apis/{gateway.api_id}/deployments")
    assert deployments == [{"stageName": "production", "description": "Deployed by aws_ws_async"}]
    assert gateway.deployment_id == local_apigw.deployments[gateway.api_id][0]["deploymentId"]

    route = await gateway.additional_routes.aget(route_key="sendmessage")
    assert route.deployed
    assert route.route_id == routes["sendmessage"]["RouteId"]
