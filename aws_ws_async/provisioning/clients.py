"""aiobotocore clients for provisioning: ``apigatewayv2`` and ``route53``.

Provisioning runs rarely (an admin click, a command), so one client per operation is cheaper to
reason about than a cache: it is created on the running loop and closed with it. Endpoints come
from ``apigateway_endpoint_url`` / ``route53_endpoint_url`` so moto or LocalStack can stand in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aws_ws_async import aws
from aws_ws_async.conf import get_settings

#: Provisioning calls are few and each matters: standard retries, a little more patience.
RETRIES = {"mode": "standard", "max_attempts": 3}


@asynccontextmanager
async def apigatewayv2_client() -> AsyncIterator[Any]:
    """An ``apigatewayv2`` client bound to the running loop, closed on exit."""
    session = aws.make_session()
    config = aws.client_config(retries=RETRIES, read_timeout=30)
    async with session.client(
        "apigatewayv2",
        endpoint_url=get_settings().apigateway_endpoint_url,
        config=config,
    ) as client:
        yield client


@asynccontextmanager
async def route53_client() -> AsyncIterator[Any]:
    """A ``route53`` client (global service; the region only matters for signing)."""
    session = aws.make_session()
    config = aws.client_config(retries=RETRIES, read_timeout=30)
    async with session.client(
        "route53",
        endpoint_url=get_settings().route53_endpoint_url,
        config=config,
    ) as client:
        yield client


def region_of(client: Any) -> str:
    """The region a client signs for (used to build ARNs)."""
    return str(client.meta.region_name)


def api_arn(region: str, api_id: str) -> str:
    """The ARN ``TagResource``/``GetTags`` take for a WebSocket API."""
    return f"arn:aws:apigateway:{region}::/apis/{api_id}"


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ("" for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
