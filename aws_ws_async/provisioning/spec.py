"""The desired AWS state of one gateway, as plain data, and the request parameters built from it.

Everything here is pure: it turns plain values (a gateway's fields and its additional routes,
handed over by ``aws_ws_async.models``) into the exact
keyword arguments the ``apigatewayv2`` operations take. Keeping it free of I/O lets the tests check
every shape against botocore's service model, and lets push, drift detection and creation share
one definition of "what AWS should look like".

Fields AWS documents as output-only (``DomainNameStatus``, ``HostedZoneId``...) or as HTTP-API-only
(``RouteKey``/``Target``/``CredentialsArn``/``CorsConfiguration`` on ``CreateApi``, ``TlsConfig``,
``ResponseParameters``, ``AutoDeploy``) are never sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aws_ws_async.conf import AppSettings, get_settings
from aws_ws_async.exceptions import ApiGatewaySyncError
from aws_ws_async.provisioning.rules import host_is_allowed

#: Predefined route key -> the suffix appended to ``target_base_endpoint``.
DEFAULT_ROUTES: dict[str, str] = {
    "$connect": "connect",
    "$disconnect": "disconnect",
    "$default": "default",
}
#: Routes that never carry a route response (no message to answer).
LIFECYCLE_ROUTES = frozenset({"$connect", "$disconnect"})
ROUTE_RESPONSE_KEY = "$default"
HEADER_PREFIX = "integration.request.header."
INTEGRATION_TIMEOUT_MS = 29_000


@dataclass(frozen=True)
class RouteSpec:
    """One route and the HTTP_PROXY integration behind it."""

    route_key: str
    integration_uri: str
    two_way: bool = False


@dataclass(frozen=True)
class GatewaySpec:
    """What one gateway should look like in AWS."""

    name: str
    description: str
    route_selection_expression: str
    api_key_selection_expression: str
    stage_name: str
    stage_description: str
    tags: Mapping[str, str]
    request_parameters: Mapping[str, str]
    routes: tuple[RouteSpec, ...]
    domain_name: str = ""
    certificate_arn: str = ""
    hosted_zone_id: str = ""
    managed_headers: frozenset[str] = field(default_factory=frozenset)

    def route(self, route_key: str) -> RouteSpec | None:
        for route in self.routes:
            if route.route_key == route_key:
                return route
        return None


def request_parameters(app_settings: AppSettings | None = None) -> dict[str, str]:
    """Header mappings every integration carries: the connection id and, if set, the secret.

    The secret is a *static* value (single-quoted) and always the first configured secret, so
    rotation works by listing the new secret first, running ``update_api_gateway_integrations``
    and removing the old secret once that has been deployed.
    """
    s = app_settings or get_settings()
    s.raise_if_insecure()  # a malformed secret must not provision "no secret"
    params = {f"{HEADER_PREFIX}{s.connection_id_header}": "context.connectionId"}
    if s.gateway_secret:
        params[f"{HEADER_PREFIX}{s.gateway_secret_header}"] = f"'{s.gateway_secret}'"
    return params


def managed_header_keys(app_settings: AppSettings | None = None) -> frozenset[str]:
    """Lower-cased request-parameter keys we own (header names are case-insensitive)."""
    s = app_settings or get_settings()
    return frozenset(
        f"{HEADER_PREFIX}{name}".lower()
        for name in (s.connection_id_header, s.gateway_secret_header)
    )


def merge_request_parameters(
    remote: Mapping[str, str], desired: Mapping[str, str], managed: frozenset[str]
) -> dict[str, str]:
    """Keep mappings someone added by hand; replace (or drop) the ones we own."""
    merged = {k: v for k, v in remote.items() if k.lower() not in managed}
    merged.update(desired)
    return merged


def clean_tags(tags: object) -> dict[str, str]:
    """The tags as AWS takes them (string keys and values); anything else is dropped."""
    if not isinstance(tags, Mapping):
        return {}
    return {str(k): str(v) for k, v in tags.items() if str(k) and not str(k).startswith("aws:")}


def build_spec(
    *,
    name: str,
    target_base_endpoint: str,
    stage_name: str,
    description: str = "",
    route_selection_expression: str = "$request.body.action",
    api_key_selection_expression: str = "$request.header.x-api-key",
    stage_description: str = "",
    tags: object = None,
    enable_route_responses: bool = False,
    additional_routes: Iterable[tuple[str, str]] = (),
    domain_name: str = "",
    certificate_arn: str = "",
    hosted_zone_id: str = "",
    app_settings: AppSettings | None = None,
) -> GatewaySpec:
    """The desired state from plain values; ``additional_routes`` are (route key, URL) pairs.

    The lifecycle routes and ``$default`` post to ``<target_base_endpoint><suffix>`` (see
    :data:`DEFAULT_ROUTES`); the header mappings come from the settings (``app_settings``).
    """
    two_way = bool(enable_route_responses)
    base = target_base_endpoint or ""
    routes = [
        RouteSpec(
            route_key=key,
            integration_uri=f"{base}{suffix}",
            two_way=two_way and key not in LIFECYCLE_ROUTES,
        )
        for key, suffix in DEFAULT_ROUTES.items()
    ]
    routes.extend(
        RouteSpec(route_key=key, integration_uri=url, two_way=two_way)
        for key, url in additional_routes
    )
    return GatewaySpec(
        name=name,
        description=description,
        route_selection_expression=route_selection_expression,
        api_key_selection_expression=api_key_selection_expression,
        stage_name=stage_name,
        stage_description=stage_description,
        tags=clean_tags(tags),
        request_parameters=request_parameters(app_settings),
        routes=tuple(routes),
        domain_name=domain_name,
        certificate_arn=certificate_arn,
        hosted_zone_id=hosted_zone_id,
        managed_headers=managed_header_keys(app_settings),
    )


def check_hosts(spec: GatewaySpec, app_settings: AppSettings | None = None) -> None:
    """Refuse integration URLs outside ``allowed_integration_hosts`` (or not http(s)).

    The admin validates these too, but rows can be written by code that skips ``full_clean``;
    an integration URL decides where API Gateway sends every connection's traffic.
    """
    s = app_settings or get_settings()
    s.raise_if_insecure()  # a malformed host list must not mean "any host"
    allowed = s.allowed_integration_hosts
    for route in spec.routes:
        parts = urlsplit(route.integration_uri)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ApiGatewaySyncError(
                f"Route {route.route_key}: integration URL {route.integration_uri!r} is not an "
                "http(s) URL."
            )
        if allowed and not host_is_allowed(parts.hostname, allowed):
            raise ApiGatewaySyncError(
                f"Route {route.route_key}: host {parts.hostname!r} is not in "
                "allowed_integration_hosts."
            )


# --- request shapes -------------------------------------------------------------------------


def _api_fields(spec: GatewaySpec) -> dict[str, Any]:
    return {
        "Name": spec.name,
        "Description": spec.description,
        "RouteSelectionExpression": spec.route_selection_expression,
        "ApiKeySelectionExpression": spec.api_key_selection_expression,
    }


def create_api_params(spec: GatewaySpec) -> dict[str, Any]:
    params = {
        **_api_fields(spec),
        "ProtocolType": "WEBSOCKET",
        # Our backend validates messages itself; AWS models would reject non-JSON frames.
        "DisableSchemaValidation": True,
    }
    if spec.tags:
        params["Tags"] = dict(spec.tags)
    return params


def update_api_params(spec: GatewaySpec, api_id: str) -> dict[str, Any]:
    return {"ApiId": api_id, **_api_fields(spec)}


def integration_params(
    spec: GatewaySpec, route: RouteSpec, remote_parameters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``CreateIntegration``/``UpdateIntegration`` arguments (without ``ApiId``)."""
    return {
        "IntegrationType": "HTTP_PROXY",
        "IntegrationMethod": "POST",
        "IntegrationUri": route.integration_uri,
        "ConnectionType": "INTERNET",
        "PayloadFormatVersion": "1.0",
        "PassthroughBehavior": "WHEN_NO_MATCH",
        "TimeoutInMillis": INTEGRATION_TIMEOUT_MS,
        "RequestParameters": merge_request_parameters(
            remote_parameters or {}, spec.request_parameters, spec.managed_headers
        ),
    }


def route_params(route: RouteSpec, integration_id: str) -> dict[str, Any]:
    """``CreateRoute`` arguments (without ``ApiId``)."""
    params: dict[str, Any] = {
        "RouteKey": route.route_key,
        "Target": f"integrations/{integration_id}",
        "AuthorizationType": "NONE",
        "ApiKeyRequired": False,
    }
    if route.two_way:
        params["RouteResponseSelectionExpression"] = ROUTE_RESPONSE_KEY
    return params


def stage_params(spec: GatewaySpec) -> dict[str, Any]:
    params: dict[str, Any] = {"StageName": spec.stage_name, "Description": spec.stage_description}
    if spec.tags:
        params["Tags"] = dict(spec.tags)
    return params


def domain_name_params(spec: GatewaySpec) -> dict[str, Any]:
    params: dict[str, Any] = {
        "DomainName": spec.domain_name,
        "DomainNameConfigurations": [
            {
                "CertificateArn": spec.certificate_arn,
                "EndpointType": "REGIONAL",
                "SecurityPolicy": "TLS_1_2",
            }
        ],
    }
    if spec.tags:
        params["Tags"] = dict(spec.tags)
    return params


def api_mapping_params(spec: GatewaySpec, api_id: str) -> dict[str, Any]:
    return {"ApiId": api_id, "DomainName": spec.domain_name, "Stage": spec.stage_name}


def alias_change_batch(domain_name: str, target_domain: str, target_zone: str) -> dict[str, Any]:
    """A Route 53 ``UPSERT`` of an A alias from the custom domain to API Gateway's domain."""
    return {
        "Comment": "aws_ws_async custom domain alias",
        "Changes": [
            {
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": domain_name,
                    "Type": "A",
                    "AliasTarget": {
                        "HostedZoneId": target_zone,
                        "DNSName": target_domain,
                        "EvaluateTargetHealth": False,
                    },
                },
            }
        ],
    }
