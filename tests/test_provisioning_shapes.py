"""Request shapes checked against botocore's apigatewayv2/route53 service models, and IAM."""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from aws_ws_async.models import ApiGateway
from aws_ws_async.models.gateway_provisioning import spec_of
from aws_ws_async.provisioning import spec as shapes
from aws_ws_async.provisioning.iam import build_policy

SESSION = botocore.session.get_session()
APIGW = SESSION.get_service_model("apigatewayv2")
ROUTE53 = SESSION.get_service_model("route53")
HTTP_ONLY = re.compile(r"Supported only for HTTP API|only supported for HTTP API", re.I)


def validate(model: Any, operation: str, params: dict[str, Any]) -> None:
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def http_only_members(operation: str) -> set[str]:
    shape = APIGW.operation_model(operation).input_shape
    return {n for n, m in shape.members.items() if HTTP_ONLY.search(m.documentation or "")}


def output_only_members(operation: str) -> set[str]:
    """Members of the output (or nested config) that the input does not define."""
    op = APIGW.operation_model(operation)
    return set(op.output_shape.members) - set(op.input_shape.members)


@pytest.fixture
def spec(settings: Any) -> shapes.GatewaySpec:
    settings.AWS_WS_ASYNC = {**settings.AWS_WS_ASYNC, "gateway_secret": "x" * 40}
    gateway = ApiGateway(
        api_name="Chat",
        target_base_endpoint="https://b.example.com/ws/",
        tags={"team": "web", "n": 1},
        enable_route_responses=True,
        domain_name="ws.example.com",
        certificate_arn="arn:aws:acm:us-east-1:1:certificate/x",
    )
    return spec_of(gateway)


def test_http_only_detection_finds_the_known_members() -> None:
    # guards the test below against a docs wording change that would make it vacuous
    assert {"RouteKey", "Target", "CredentialsArn", "CorsConfiguration"} <= http_only_members(
        "CreateApi"
    )
    assert "TlsConfig" in http_only_members("CreateIntegration")


@pytest.mark.parametrize(
    ("operation", "build"),
    [
        ("CreateApi", lambda s: shapes.create_api_params(s)),
        ("UpdateApi", lambda s: shapes.update_api_params(s, "abc")),
        (
            "CreateIntegration",
            lambda s: {"ApiId": "abc", **shapes.integration_params(s, s.routes[0])},
        ),
        (
            "UpdateIntegration",
            lambda s: {
                "ApiId": "abc",
                "IntegrationId": "i",
                **shapes.integration_params(s, s.routes[0]),
            },
        ),
        ("CreateRoute", lambda s: {"ApiId": "abc", **shapes.route_params(s.routes[2], "i")}),
        ("CreateStage", lambda s: {"ApiId": "abc", **shapes.stage_params(s)}),
        ("CreateDomainName", lambda s: shapes.domain_name_params(s)),
        ("CreateApiMapping", lambda s: shapes.api_mapping_params(s, "abc")),
    ],
)
def test_shapes_are_valid_and_websocket_only(
    spec: shapes.GatewaySpec, operation: str, build: Any
) -> None:
    params = build(spec)
    validate(APIGW, operation, params)
    assert not set(params) & http_only_members(operation)


def test_create_api_is_a_websocket_api_with_tags_as_strings(spec: shapes.GatewaySpec) -> None:
    params = shapes.create_api_params(spec)
    assert params["ProtocolType"] == "WEBSOCKET"
    assert params["RouteSelectionExpression"] == "$request.body.action"
    assert params["Tags"] == {"team": "web", "n": "1"}


def test_domain_name_sends_no_output_only_fields(spec: shapes.GatewaySpec) -> None:
    config = shapes.domain_name_params(spec)["DomainNameConfigurations"][0]
    assert config == {
        "CertificateArn": "arn:aws:acm:us-east-1:1:certificate/x",
        "EndpointType": "REGIONAL",
        "SecurityPolicy": "TLS_1_2",
    }
    for name in ("ApiGatewayDomainName", "HostedZoneId", "DomainNameStatus"):
        assert name not in config
    assert "DomainNameArn" in output_only_members("CreateDomainName")


def test_integrations_post_to_the_three_urls_with_header_mappings(
    spec: shapes.GatewaySpec,
) -> None:
    uris = {r.route_key: r.integration_uri for r in spec.routes}
    assert uris == {
        "$connect": "https://b.example.com/ws/connect",
        "$disconnect": "https://b.example.com/ws/disconnect",
        "$default": "https://b.example.com/ws/default",
    }
    params = shapes.integration_params(spec, spec.routes[0])
    assert params["IntegrationType"] == "HTTP_PROXY"
    assert params["IntegrationMethod"] == "POST"
    assert params["RequestParameters"] == {
        "integration.request.header.Connectionid": "context.connectionId",
        "integration.request.header.X-Ws-Gateway-Secret": "'" + "x" * 40 + "'",
    }


def test_two_way_only_on_message_routes(spec: shapes.GatewaySpec) -> None:
    two_way = {r.route_key: r.two_way for r in spec.routes}
    assert two_way == {"$connect": False, "$disconnect": False, "$default": True}
    assert shapes.route_params(spec.routes[2], "i")["RouteResponseSelectionExpression"] == (
        "$default"
    )
    assert "RouteResponseSelectionExpression" not in shapes.route_params(spec.routes[0], "i")


def test_no_secret_means_no_secret_mapping(settings: Any) -> None:
    settings.AWS_WS_ASYNC = {"connection_id_header": "X-Conn"}
    assert shapes.request_parameters() == {
        "integration.request.header.X-Conn": "context.connectionId"
    }


def test_alias_change_batch_is_valid_route53_input() -> None:
    batch = shapes.alias_change_batch("ws.example.com", "d-1.execute-api.x", "Z1")
    validate(ROUTE53, "ChangeResourceRecordSets", {"HostedZoneId": "Z9", "ChangeBatch": batch})
    assert batch["Changes"][0]["Action"] == "UPSERT"


def test_iam_policy_is_scoped_to_the_api_and_stage() -> None:
    policy = build_policy(
        region="eu-west-1",
        account_id="123456789012",
        api_id="abc123",
        stage_name="production",
        domain_name="ws.example.com",
        hosted_zone_id="/hostedzone/Z123",
    )
    json.dumps(policy)
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ManageThisApi"]["Resource"] == [
        "arn:aws:apigateway:eu-west-1::/apis/abc123",
        "arn:aws:apigateway:eu-west-1::/apis/abc123/*",
    ]
    assert by_sid["CreateWebSocketApi"]["Resource"] == ["arn:aws:apigateway:eu-west-1::/apis"]
    assert by_sid["AliasRecord"]["Resource"] == ["arn:aws:route53:::hostedzone/Z123"]
    assert by_sid["ManageConnections"]["Action"] == ["execute-api:ManageConnections"]
    assert by_sid["ManageConnections"]["Resource"] == [
        f"arn:aws:execute-api:eu-west-1:123456789012:abc123/production/{verb}/@connections/*"
        for verb in ("POST", "GET", "DELETE")
    ]
    assert "ManageCustomDomain" in by_sid
    for statement in policy["Statement"]:
        assert all("*" not in a.split(":", 1)[1] for a in statement["Action"])


def test_iam_policy_without_domain_has_no_domain_or_dns_rights() -> None:
    policy = build_policy(region="us-east-1", account_id="*", api_id="", stage_name="s")
    sids = {s["Sid"] for s in policy["Statement"]}
    assert "ManageCustomDomain" not in sids
    assert "AliasRecord" not in sids
    connections = next(s for s in policy["Statement"] if s["Sid"] == "ManageConnections")
    assert connections["Resource"][0] == "arn:aws:execute-api:us-east-1:*:*/s/POST/@connections/*"
