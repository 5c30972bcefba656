"""aiobotocore clients for provisioning: ``apigatewayv2`` and ``route53``.

Provisioning runs rarely (an admin click, a command), so one client per operation is cheaper to
reason about than a cache: it is created on the running loop and closed with it. Endpoints come
from ``apigateway_endpoint_url`` / ``route53_endpoint_url`` so moto or LocalStack can stand in.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from aws_ws_async import aws
from aws_ws_async.conf import AppSettings, get_settings

#: Provisioning calls are few and each matters: standard retries, a little more patience.
RETRIES = {"mode": "standard", "max_attempts": 3}


_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[AppSettings, Any]] = (
    weakref.WeakKeyDictionary()
)


def _session() -> Any:
    """One session per event loop and settings object.

    A new session re-reads botocore's service models (tens of milliseconds per client);
    reusing it per loop keeps that cost to once, while credential refresh locks stay on the
    loop that created them. A settings change (new settings object) starts a new session.
    """
    loop = asyncio.get_running_loop()
    current = get_settings()
    cached = _sessions.get(loop)
    if cached is None or cached[0] is not current:
        cached = (current, aws.make_session(current))
        _sessions[loop] = cached
    return cached[1]


@asynccontextmanager
async def _client(service: str, endpoint_setting: str) -> AsyncIterator[Any]:
    """A ``service`` client on the loop's session, its endpoint read from settings on entry."""
    session = _session()
    config = aws.client_config(retries=RETRIES, read_timeout=30)
    endpoint_url = getattr(get_settings(), endpoint_setting)
    async with session.client(service, endpoint_url=endpoint_url, config=config) as client:
        yield client


def apigatewayv2_client() -> AbstractAsyncContextManager[Any]:
    """An ``apigatewayv2`` client bound to the running loop, closed on exit."""
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
