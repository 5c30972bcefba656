"""Custom domain: regional domain name (TLS 1.2), API mapping, optional Route 53 alias. Resumable.

Needs an ACM certificate for the domain *in the gateway's region* (regional endpoints use the
regional certificate). API Gateway answers with its own target domain (``d-xxxx.execute-api...``)
and that target's hosted zone; both are recorded and are what the alias record points at.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_ws_async.exceptions import ApiGatewaySyncError
from aws_ws_async.provisioning.clients import apigatewayv2_client, error_code, route53_client
from aws_ws_async.provisioning.recorder import Run, Step
from aws_ws_async.provisioning.remote import paginate
from aws_ws_async.provisioning.spec import (
    GatewaySpec,
    alias_change_batch,
    api_mapping_params,
    domain_name_params,
)

logger = logging.getLogger("aws_ws_async.provisioning.domain")


def _target(response: dict[str, Any]) -> tuple[str, str]:
    configs = response.get("DomainNameConfigurations") or [{}]
    return str(configs[0].get("ApiGatewayDomainName", "")), str(configs[0].get("HostedZoneId", ""))


async def acreate_domain(spec: GatewaySpec, run: Run) -> list[str]:
    """Create (or finish creating) the custom domain of ``spec``; returns the steps performed.

    The API must exist (``run.state.api_id``) and ``spec`` must name the domain and its
    certificate; the caller checks both before it claims anything.
    """
    state = run.state
    steps: list[str] = []
    async with apigatewayv2_client() as client:
        if not state.api_gateway_domain_name:
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
            await run.record(
                Step.DOMAIN_CREATED,
                api_gateway_domain_name=target_domain,
                api_gateway_hosted_zone_id=target_zone,
            )
        if not state.api_mapping_id:
            existing = [
                m
                for m in await paginate(client.get_api_mappings, DomainName=spec.domain_name)
                if m.get("ApiId") == state.api_id and m.get("Stage") == spec.stage_name
            ]
            if existing:
                mapping_id = existing[0]["ApiMappingId"]
            else:
                mapping = await client.create_api_mapping(**api_mapping_params(spec, state.api_id))
                mapping_id = mapping["ApiMappingId"]
                steps.append(f"mapped {spec.domain_name} to stage {spec.stage_name}")
            await run.record(Step.MAPPED, api_mapping_id=mapping_id)
    if spec.hosted_zone_id and not (state.aws_resources or {}).get("alias_record"):
        async with route53_client() as r53:
            await r53.change_resource_record_sets(
                HostedZoneId=spec.hosted_zone_id,
                ChangeBatch=alias_change_batch(
                    spec.domain_name,
                    state.api_gateway_domain_name,
                    state.api_gateway_hosted_zone_id,
                ),
            )
        await run.record_resource("alias_record", f"{spec.domain_name} A")
        steps.append(f"alias {spec.domain_name} -> {state.api_gateway_domain_name}")
    await run.record(Step.CUSTOM_DOMAIN_CREATED, custom_domain_created=True)
    logger.info("%s custom domain: %s", state.label, "; ".join(steps) or "already done")
    return steps
