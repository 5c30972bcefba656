"""aiobotocore clients for provisioning: ``apigatewayv2`` and ``route53``.

They come from the per-loop cache of :mod:`aws_ws_async.aws` (the one that also holds the
delivery clients): one session per loop and credentials, one client per service, endpoint and
settings, closed when the loop ends. An admin click or command on the sync portal therefore
reuses a warm client instead of building one (and re-reading credentials) per operation.
Endpoints come from ``apigateway_endpoint_url`` / ``route53_endpoint_url`` so moto or
LocalStack can stand in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from aws_ws_async import aws
from aws_ws_async.conf import get_settings

#: Provisioning calls are few and each matters: standard retries, a little more patience.
RETRIES = {"mode": "standard", "max_attempts": 3}
READ_TIMEOUT_SECONDS = 30


@asynccontextmanager
async def _client(service: str, endpoint_setting: str) -> AsyncIterator[Any]:
    """The loop's cached ``service`` client, its endpoint read from settings on entry.

    Leaving the block does not close it: the cache does, with the loop.
    """
    s = get_settings()
    endpoint_url = getattr(s, endpoint_setting)
    config = aws.client_config(retries=RETRIES, read_timeout=READ_TIMEOUT_SECONDS)
    yield await aws.get_service_client(
        service,
        endpoint_url,
        config=config,
        config_key=("provisioning", s.connect_timeout_seconds, READ_TIMEOUT_SECONDS),
    )


def apigatewayv2_client() -> AbstractAsyncContextManager[Any]:
    """The running loop's ``apigatewayv2`` client (cached; closed with the loop)."""
    return _client("apigatewayv2", "apigateway_endpoint_url")


def route53_client() -> AbstractAsyncContextManager[Any]:
    """A ``route53`` client (global service; the region only matters for signing)."""
    return _client("route53", "route53_endpoint_url")


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
