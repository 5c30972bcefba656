"""Provisioning end to end against moto (server mode) behind the local endpoint."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from aws_ws_async.exceptions import ApiGatewaySyncError, ProvisioningInProgress
from aws_ws_async.models import ApiGateway, ProvisioningStatus
from aws_ws_async.models.gateway_state import CLAIM_TIMEOUT
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


async def test_create_again_is_a_no_op(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    moto_apigw: Any,
    local_apigw: LocalApiGateway,
) -> None:
    await new_gateway.acreate_gateway()
    assert await new_gateway.acreate_gateway() == []
    assert len(moto_apigw.get_apis()["Items"]) == 1
    assert len(local_apigw.calls("POST", r"/v2/apis/[^/]+/deployments")) == 1


async def test_failure_midway_is_recorded_and_the_next_run_resumes(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    moto_apigw: Any,
    local_apigw: LocalApiGateway,
) -> None:
    # The first route creation fails once: the API and the $connect integration already exist.
    local_apigw.fail("POST", r"/v2/apis/[^/]+/routes")
    with pytest.raises(ApiGatewaySyncError, match="BadRequestException"):
        await new_gateway.acreate_gateway()
    failed = await ApiGateway.objects.aget(pk=new_gateway.pk)
    assert failed.api_id
    assert failed.provisioning_status == ProvisioningStatus.API_CREATED
    assert "BadRequestException" in failed.last_error
    assert failed.provisioning_claim == ""
    assert not failed.is_deployed
    assert len(moto_apigw.get_integrations(ApiId=failed.api_id)["Items"]) == 1

    steps = await failed.acreate_gateway()

    done = await ApiGateway.objects.aget(pk=new_gateway.pk)
    assert done.provisioning_status == ProvisioningStatus.DEPLOYED
    assert done.last_error == ""
    assert not any("created API" in s for s in steps)
    assert len(moto_apigw.get_apis()["Items"]) == 1
    assert len(moto_apigw.get_integrations(ApiId=done.api_id)["Items"]) == 4
    assert len(moto_apigw.get_routes(ApiId=done.api_id)["Items"]) == 4


async def test_failed_deployment_resumes_with_only_the_deployment(
    provisioning_settings: Any, new_gateway: ApiGateway, local_apigw: LocalApiGateway
) -> None:
    local_apigw.fail("POST", r"/v2/apis/[^/]+/deployments", status=409, code="ConflictException")
    with pytest.raises(ApiGatewaySyncError):
        await new_gateway.acreate_gateway()
    gateway = await ApiGateway.objects.aget(pk=new_gateway.pk)
    assert gateway.provisioning_status == ProvisioningStatus.ROUTES_CREATED
    routes_before = len(local_apigw.calls("POST", r"/v2/apis/[^/]+/routes"))

    await gateway.acreate_gateway()

    assert gateway.provisioning_status == ProvisioningStatus.DEPLOYED
    assert len(local_apigw.calls("POST", r"/v2/apis/[^/]+/routes")) == routes_before
    assert len(local_apigw.calls("POST", r"/v2/apis/[^/]+/stages")) == 1


async def test_failure_before_anything_exists_marks_the_row_failed(
    provisioning_settings: Any, new_gateway: ApiGateway, local_apigw: LocalApiGateway
) -> None:
    local_apigw.fail("POST", "/v2/apis", status=403, code="AccessDeniedException")
    with pytest.raises(ApiGatewaySyncError):
        await new_gateway.acreate_gateway()
    gateway = await ApiGateway.objects.aget(pk=new_gateway.pk)
    assert gateway.provisioning_status == ProvisioningStatus.FAILED
    assert gateway.last_error.startswith("AccessDeniedException (CreateApi): injected")
    await gateway.acreate_gateway()
    assert gateway.provisioning_status == ProvisioningStatus.DEPLOYED


async def test_two_concurrent_runs_one_proceeds_one_is_refused(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    moto_apigw: Any,
    local_apigw: LocalApiGateway,
) -> None:
    hold = local_apigw.hold("POST", "/v2/apis")
    first = asyncio.create_task(new_gateway.acreate_gateway())
    assert await asyncio.to_thread(hold.entered.wait, 10)

    other = await ApiGateway.objects.aget(pk=new_gateway.pk)
    with pytest.raises(ProvisioningInProgress):
        await other.acreate_gateway()

    hold.release.set()
    await first
    gateway = await ApiGateway.objects.aget(pk=new_gateway.pk)
    assert gateway.provisioning_status == ProvisioningStatus.DEPLOYED
    assert gateway.last_error == ""  # the refused run wrote nothing
    assert len(moto_apigw.get_apis()["Items"]) == 1


async def test_a_stale_claim_is_taken_over(
    provisioning_settings: Any, new_gateway: ApiGateway
) -> None:
    await ApiGateway.objects.filter(pk=new_gateway.pk).aupdate(
        provisioning_claim="crashed-run",
        provisioning_claimed_at=timezone.now() - CLAIM_TIMEOUT - timedelta(seconds=1),
    )
    await new_gateway.acreate_gateway()
    assert new_gateway.is_deployed


async def test_missing_target_is_a_clear_error_and_writes_nothing(
    provisioning_settings: Any, db: None
) -> None:
    gateway = await ApiGateway.objects.acreate(api_name="No target")
    with pytest.raises(ApiGatewaySyncError, match="target_base_endpoint"):
        await gateway.acreate_gateway()
    fresh = await ApiGateway.objects.aget(pk=gateway.pk)
    assert fresh.provisioning_status == ProvisioningStatus.PENDING
    assert fresh.last_error == ""


async def test_custom_domain_with_mapping_and_alias_record(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    moto_apigw: Any,
    moto_route53: Any,
    local_apigw: LocalApiGateway,
) -> None:
    zone = moto_route53.create_hosted_zone(Name="example.com", CallerReference="t")["HostedZone"]
    await new_gateway.acreate_gateway()
    new_gateway.domain_name = "ws.example.com"
    new_gateway.certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    new_gateway.hosted_zone_id = zone["Id"].rsplit("/", 1)[-1]
    await new_gateway.asave()

    # The mapping fails once: the domain name must not be created twice on the next run.
    local_apigw.fail("POST", r"/v2/domainnames/[^/]+/apimappings")
    with pytest.raises(ApiGatewaySyncError):
        await new_gateway.acreate_custom_domain()
    assert new_gateway.provisioning_status == ProvisioningStatus.DOMAIN_CREATED
    await new_gateway.acreate_custom_domain()

    gateway = await ApiGateway.objects.aget(pk=new_gateway.pk)
    assert gateway.custom_domain_created
    assert gateway.provisioning_status == ProvisioningStatus.MAPPED
    assert gateway.api_gateway_domain_name.endswith(".execute-api.us-east-1.amazonaws.com")
    assert gateway.api_gateway_hosted_zone_id == "Z1UJRXOUMOOFQ8"
    assert gateway.websocket_url == "wss://ws.example.com"
    assert len(local_apigw.calls("POST", "/v2/domainnames")) == 1
    sent = local_apigw.calls("POST", "/v2/domainnames")[0]
    assert sent["domainNameConfigurations"] == [
        {
            "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            "endpointType": "REGIONAL",
            "securityPolicy": "TLS_1_2",
        }
    ]
    mappings = moto_apigw.get_api_mappings(DomainName="ws.example.com")["Items"]
    assert [(m["ApiId"], m["Stage"]) for m in mappings] == [(gateway.api_id, "production")]
    records = moto_route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    alias = [r for r in records if r["Type"] == "A"]
    assert alias[0]["Name"] == "ws.example.com."
    assert alias[0]["AliasTarget"]["DNSName"].rstrip(".") == gateway.api_gateway_domain_name
    assert alias[0]["AliasTarget"]["HostedZoneId"] == "Z1UJRXOUMOOFQ8"

    # the mapping removed behind our back is drift, and a push restores it
    assert await gateway.adetect_drift() == []
    moto_apigw.delete_api_mapping(ApiMappingId=gateway.api_mapping_id, DomainName="ws.example.com")
    drift = await gateway.adetect_drift()
    assert [(d.resource, d.field, d.remote) for d in drift] == [
        ("domain ws.example.com", "api_mapping", None)
    ]
    await gateway.async_to_aws()
    mappings = moto_apigw.get_api_mappings(DomainName="ws.example.com")["Items"]
    assert [(m["ApiId"], m["ApiMappingId"]) for m in mappings] == [
        (gateway.api_id, gateway.api_mapping_id)
    ]


async def test_custom_domain_needs_a_deployed_api(
    provisioning_settings: Any, new_gateway: ApiGateway
) -> None:
    new_gateway.domain_name = "ws.example.com"
    new_gateway.certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    with pytest.raises(ApiGatewaySyncError, match="deploy"):
        await new_gateway.acreate_custom_domain()


async def test_push_local_changes_then_nothing_left(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    moto_apigw: Any,
    local_apigw: LocalApiGateway,
) -> None:
    await new_gateway.acreate_gateway()
    new_gateway.api_description = "changed"
    new_gateway.target_base_endpoint = "https://other.example.com/ws/"
    new_gateway.stage_description = "new stage text"
    new_gateway.tags = {"team": "platform", "env": "prod"}
    await sync_to_async(new_gateway.save)(push_to_aws=False)

    assert {d.field for d in await new_gateway.async_to_aws(dry_run=True)} == {
        "api_description",
        "integration_uri",
        "stage_description",
        "tags",
    }
    assert moto_apigw.get_api(ApiId=new_gateway.api_id)["Description"] == "chat"  # dry run

    diffs = await new_gateway.async_to_aws()

    assert diffs
    api_id = new_gateway.api_id
    assert moto_apigw.get_api(ApiId=api_id)["Description"] == "changed"
    assert moto_apigw.get_tags(ResourceArn=f"arn:aws:apigateway:us-east-1::/apis/{api_id}")[
        "Tags"
    ] == {"team": "platform", "env": "prod"}
    routes = routes_by_key(moto_apigw, api_id)
    assert integration_of(moto_apigw, api_id, routes["$connect"])["IntegrationUri"] == (
        "https://other.example.com/ws/connect"
    )
    # the additional route keeps its own URL
    assert integration_of(moto_apigw, api_id, routes["sendmessage"])["IntegrationUri"] == (
        BASE + "sendmessage"
    )
    assert local_apigw.stages[(api_id, "production")]["description"] == "new stage text"
    assert len(local_apigw.deployments[api_id]) == 2
    assert await new_gateway.async_to_aws() == []
    assert len(local_apigw.deployments[api_id]) == 2  # nothing changed, no redeploy


async def test_drift_made_directly_in_aws_is_detected_and_pulled(
    provisioning_settings: Any, new_gateway: ApiGateway, moto_apigw: Any
) -> None:
    await new_gateway.acreate_gateway()
    api_id = new_gateway.api_id
    routes = routes_by_key(moto_apigw, api_id)
    default_integration = routes["$default"]["Target"].split("/")[1]
    moto_apigw.update_api(ApiId=api_id, Name="Renamed in console")
    moto_apigw.update_integration(
        ApiId=api_id,
        IntegrationId=default_integration,
        IntegrationUri="https://moved.example.com/hooks/default",
        RequestParameters={"integration.request.header.Connectionid": "context.connectionId"},
    )
    moto_apigw.delete_route(ApiId=api_id, RouteId=routes["sendmessage"]["RouteId"])
    manual = moto_apigw.create_integration(
        ApiId=api_id,
        IntegrationType="HTTP_PROXY",
        IntegrationMethod="POST",
        IntegrationUri="https://backend.example.com/ws/manual",
    )
    moto_apigw.create_route(
        ApiId=api_id, RouteKey="manual", Target=f"integrations/{manual['IntegrationId']}"
    )

    drift = await new_gateway.adetect_drift()

    found = {(d.resource, d.field) for d in drift}
    assert ("api", "api_name") in found
    assert ("route $default", "integration_uri") in found
    assert ("route $default", "request_parameters") in found  # the secret mapping was dropped
    assert ("route sendmessage", "exists") in found
    assert ("route manual", "exists") in found
    name = next(d for d in drift if d.field == "api_name")
    assert (name.local, name.remote) == ("Chat API", "Renamed in console")
    assert "Renamed in console" in str(name)
    secret_diff = next(d for d in drift if d.field == "request_parameters")
    assert SECRET not in str(secret_diff)  # never print the secret

    pulled = await new_gateway.async_from_aws()

    assert pulled
    gateway = await ApiGateway.objects.aget(pk=new_gateway.pk)
    assert gateway.api_name == "Renamed in console"
    assert gateway.target_base_endpoint == "https://moved.example.com/hooks/"
    local_routes = {r.route_key: r async for r in gateway.additional_routes.all()}
    assert not local_routes["sendmessage"].deployed
    assert local_routes["manual"].deployed
    assert local_routes["manual"].integration_url == "https://backend.example.com/ws/manual"
    remaining = {(d.resource, d.field) for d in await gateway.adetect_drift()}
    # what AWS cannot hold (the secret mapping, the deleted route) is still reported
    assert ("api", "api_name") not in remaining
    assert ("route manual", "exists") not in remaining
    assert ("route sendmessage", "exists") in remaining

    # pushing restores the secret mapping and recreates the deleted route
    await gateway.async_to_aws()
    assert await gateway.adetect_drift() == []
    assert "sendmessage" in routes_by_key(moto_apigw, api_id)


async def test_pull_dry_run_changes_nothing(
    provisioning_settings: Any, new_gateway: ApiGateway, moto_apigw: Any
) -> None:
    await new_gateway.acreate_gateway()
    moto_apigw.update_api(ApiId=new_gateway.api_id, Description="edited in AWS")
    diffs = await new_gateway.async_from_aws(dry_run=True)
    assert [(d.field, d.remote) for d in diffs] == [("api_description", "edited in AWS")]
    assert (await ApiGateway.objects.aget(pk=new_gateway.pk)).api_description == "chat"


async def test_route_responses_are_created_and_removed(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    moto_apigw: Any,
    local_apigw: LocalApiGateway,
) -> None:
    new_gateway.enable_route_responses = True
    await sync_to_async(new_gateway.save)(push_to_aws=False)
    await new_gateway.acreate_gateway()
    api_id = new_gateway.api_id
    routes = routes_by_key(moto_apigw, api_id)
    for key in ("$default", "sendmessage"):
        assert routes[key]["RouteResponseSelectionExpression"] == "$default"
        assert [
            r["routeResponseKey"]
            for r in local_apigw.route_responses[(api_id, routes[key]["RouteId"])]
        ] == ["$default"]
    for key in ("$connect", "$disconnect"):
        assert (api_id, routes[key]["RouteId"]) not in local_apigw.route_responses

    new_gateway.enable_route_responses = False
    await sync_to_async(new_gateway.save)(push_to_aws=False)
    diffs = await new_gateway.async_to_aws()
    assert {d.route_key for d in diffs if d.field == "two_way"} == {"$default", "sendmessage"}
    for key in ("$default", "sendmessage"):
        assert local_apigw.route_responses[(api_id, routes[key]["RouteId"])] == []


async def test_route_responses_switched_on_later(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    moto_apigw: Any,
    local_apigw: LocalApiGateway,
) -> None:
    await new_gateway.acreate_gateway()
    api_id = new_gateway.api_id
    routes = routes_by_key(moto_apigw, api_id)
    assert "RouteResponseSelectionExpression" not in routes["$default"]
    new_gateway.enable_route_responses = True
    diffs = await new_gateway.async_to_aws(fields={"enable_route_responses"})
    assert {d.route_key for d in diffs} == {"$default", "sendmessage"}
    routes = routes_by_key(moto_apigw, api_id)
    for key in ("$default", "sendmessage"):
        assert routes[key]["RouteResponseSelectionExpression"] == "$default"
        assert len(local_apigw.route_responses[(api_id, routes[key]["RouteId"])]) == 1
    assert len(local_apigw.calls("PATCH", rf"/v2/apis/{api_id}/routes/[^/]+")) == 2
    assert await new_gateway.adetect_drift() == []


async def test_route_pointed_at_another_routes_integration_gets_its_own(
    provisioning_settings: Any, new_gateway: ApiGateway, moto_apigw: Any
) -> None:
    await new_gateway.acreate_gateway()
    api_id = new_gateway.api_id
    routes = routes_by_key(moto_apigw, api_id)
    moto_apigw.update_route(
        ApiId=api_id, RouteId=routes["sendmessage"]["RouteId"], Target=routes["$default"]["Target"]
    )
    assert {d.field for d in await new_gateway.adetect_drift()} == {"integration_uri"}
    await new_gateway.async_to_aws()
    routes = routes_by_key(moto_apigw, api_id)
    assert routes["sendmessage"]["Target"] != routes["$default"]["Target"]
    assert integration_of(moto_apigw, api_id, routes["$default"])["IntegrationUri"] == (
        BASE + "default"
    )
    assert integration_of(moto_apigw, api_id, routes["sendmessage"])["IntegrationUri"] == (
        BASE + "sendmessage"
    )
    assert await new_gateway.adetect_drift() == []


async def test_secret_rotation_dry_run_then_rewrite_and_redeploy(
    provisioning_settings: Any,
    new_gateway: ApiGateway,
    moto_apigw: Any,
    local_apigw: LocalApiGateway,
) -> None:
    await new_gateway.acreate_gateway()
    api_id = new_gateway.api_id
    new_secret = "n3w-secret-value-for-tests-0123456789abcdef"
    provisioning_settings.AWS_WS_ASYNC = {
        **provisioning_settings.AWS_WS_ASYNC,
        "gateway_secret": [new_secret, SECRET],
    }
    planned = await new_gateway.aupdate_integrations(dry_run=True)
    assert {d.route_key for d in planned} == {"$connect", "$disconnect", "$default", "sendmessage"}
    assert len(local_apigw.deployments[api_id]) == 1
    for item in moto_apigw.get_integrations(ApiId=api_id)["Items"]:
        assert item["RequestParameters"]["integration.request.header.X-Ws-Gateway-Secret"] == (
            f"'{SECRET}'"
        )

    done = await new_gateway.aupdate_integrations()

    assert len(done) == 4
    assert len(local_apigw.deployments[api_id]) == 2
    for item in moto_apigw.get_integrations(ApiId=api_id)["Items"]:
        assert item["RequestParameters"] == {
            "integration.request.header.Connectionid": "context.connectionId",
            "integration.request.header.X-Ws-Gateway-Secret": f"'{new_secret}'",
        }
    assert await new_gateway.aupdate_integrations() == []


async def test_hand_made_mappings_survive_a_rotation(
    provisioning_settings: Any, new_gateway: ApiGateway, moto_apigw: Any
) -> None:
    await new_gateway.acreate_gateway()
    api_id = new_gateway.api_id
    connect = routes_by_key(moto_apigw, api_id)["$connect"]["Target"].split("/")[1]
    moto_apigw.update_integration(
        ApiId=api_id,
        IntegrationId=connect,
        RequestParameters={
            "integration.request.header.Sec-WebSocket-Version": "'0'",
            "integration.request.header.connectionid": "context.connectionId",
        },
    )
    await new_gateway.aupdate_integrations()
    params = moto_apigw.get_integration(ApiId=api_id, IntegrationId=connect)["RequestParameters"]
    assert params == {
        "integration.request.header.Sec-WebSocket-Version": "'0'",
        "integration.request.header.Connectionid": "context.connectionId",
        "integration.request.header.X-Ws-Gateway-Secret": f"'{SECRET}'",
    }


async def test_asave_pushes_without_blocking_forever(
    provisioning_settings: Any, new_gateway: ApiGateway, moto_apigw: Any
) -> None:
    await new_gateway.acreate_gateway()
    gateway = await ApiGateway.objects.aget(pk=new_gateway.pk)
    gateway.api_description = "pushed from async code"
    await asyncio.wait_for(gateway.asave(), timeout=30)
    assert moto_apigw.get_api(ApiId=gateway.api_id)["Description"] == "pushed from async code"
