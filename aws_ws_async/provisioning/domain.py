"""Custom domain: regional domain name (TLS 1.2), API mapping, optional Route 53 alias. Resumable.

Needs an ACM certificate for the domain *in the gateway's region* (regional endpoints use the
regional certificate). API Gateway answers with its own target domain (``d-xxxx.execute-api...``)
and that target's hosted zone; both are recorded and are what the alias record points at.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aws_ws_async.exceptions import ApiGatewaySyncError
from aws_ws_async.provisioning.claim import claimed
from aws_ws_async.provisioning.clients import apigatewayv2_client, error_code, route53_client
from aws_ws_async.provisioning.remote import paginate
from aws_ws_async.provisioning.spec import (
    alias_change_batch,
    api_mapping_params,
    domain_name_params,
    gateway_spec,
)

if TYPE_CHECKING:
    from aws_ws_async.models.gateways import ApiGateway

logger = logging.getLogger("aws_ws_async.provisioning.domain")


def _target(response: dict[str, Any]) -> tuple[str, str]:
    configs = response.get("DomainNameConfigurations") or [{}]
    return str(configs[0].get("ApiGatewayDomainName", "")), str(configs[0].get("HostedZoneId", ""))


async def acreate_custom_domain(gateway: ApiGateway) -> list[str]:
    """Create (or finish creating) the custom domain; returns the steps this run performed."""
    from aws_ws_async.models.gateways import ProvisioningStatus as status

    if not gateway.domain_name or not gateway.certificate_arn:
        raise ApiGatewaySyncError(
            f"Gateway {gateway.pk}: set domain_name and certificate_arn (an ACM certificate in "
            "the gateway's region) before creating the custom domain."
        )
    if not gateway.is_deployed:
        raise ApiGatewaySyncError(
            f"Gateway {gateway.pk}: create and deploy the API before its custom domain."
        )
    steps: list[str] = []
    async with claimed(gateway, "create custom domain") as claim:
        spec = gateway_spec(gateway)
        async with apigatewayv2_client() as client:
            if not gateway.api_gateway_domain_name:
                try:
                    response = await client.create_domain_name(**domain_name_params(spec))
                    steps.append(f"created domain name {spec.domain_name}")
                except Exception as exc:
                    if error_code(exc) != "ConflictException":
                        raise
                    # Created by an earlier run that died before recording it: adopt it.
                    response = await client.get_domain_name(DomainName=spec.domain_name)
                target_domain, target_zone = _target(response)
                if not target_domain:
                    raise ApiGatewaySyncError(
                        f"AWS returned no ApiGatewayDomainName for {spec.domain_name}."
                    )
                await claim.record(
                    api_gateway_domain_name=target_domain,
                    api_gateway_hosted_zone_id=target_zone,
                    provisioning_status=status.DOMAIN_CREATED,
                )
            if not gateway.api_mapping_id:
                existing = [
                    m
                    for m in await paginate(client.get_api_mappings, DomainName=spec.domain_name)
                    if m.get("ApiId") == gateway.api_id and m.get("Stage") == spec.stage_name
                ]
                if existing:
                    mapping_id = existing[0]["ApiMappingId"]
                else:
                    mapping = await client.create_api_mapping(
                        **api_mapping_params(spec, gateway.api_id)
                    )
                    mapping_id = mapping["ApiMappingId"]
                    steps.append(f"mapped {spec.domain_name} to stage {spec.stage_name}")
                await claim.record(api_mapping_id=mapping_id, provisioning_status=status.MAPPED)
        if spec.hosted_zone_id and not (gateway.aws_resources or {}).get("alias_record"):
            async with route53_client() as r53:
                await r53.change_resource_record_sets(
                    HostedZoneId=spec.hosted_zone_id,
                    ChangeBatch=alias_change_batch(
                        spec.domain_name,
                        gateway.api_gateway_domain_name,
                        gateway.api_gateway_hosted_zone_id,
                    ),
                )
            await claim.record_resource("alias_record", f"{spec.domain_name} A")
            steps.append(f"alias {spec.domain_name} -> {gateway.api_gateway_domain_name}")
        await claim.record(custom_domain_created=True)
    logger.info("gateway %s custom domain: %s", gateway.pk, "; ".join(steps) or "already done")
    return steps
