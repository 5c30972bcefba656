"""Fixtures for the delivery tests: a fault-injecting @connections endpoint and session rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from aws_ws_async.testing import FaultEndpoint, FaultPlan

FAST_RETRY_SETTINGS = {
    "backoff_base_seconds": 0.001,
    "backoff_max_seconds": 0.005,
    "read_timeout_seconds": 2.0,
    "connect_timeout_seconds": 2.0,
    "max_throttle_retries": 6,
    "max_transient_retries": 2,
}


@pytest.fixture
async def fault_endpoint() -> AsyncIterator[FaultEndpoint]:
    """A fault endpoint on the test's own loop; tweak ``fault_endpoint.plan`` per test."""
    async with FaultEndpoint(FaultPlan()) as endpoint:
        yield endpoint


@pytest.fixture
def threaded_fault_endpoint() -> Iterator[FaultEndpoint]:
    """A fault endpoint serving from its own thread, for sync tests."""
    endpoint = FaultEndpoint(FaultPlan())
    endpoint.start_in_thread()
    try:
        yield endpoint
    finally:
        endpoint.stop_thread()


def point_settings_at(settings: Any, url: str, **extra: Any) -> Any:
    settings.AWS_WS_ASYNC = {
        **getattr(settings, "AWS_WS_ASYNC", {}),
        "region_name": "us-east-1",
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "management_endpoint_url": url,
        **FAST_RETRY_SETTINGS,
        **extra,
    }
    return settings


@pytest.fixture
def fault_settings(settings: Any, fault_endpoint: FaultEndpoint) -> Any:
    """Settings pointing @connections at the (async) fault endpoint, with tiny backoffs."""
    return point_settings_at(settings, fault_endpoint.url)


@pytest.fixture
def threaded_fault_settings(settings: Any, threaded_fault_endpoint: FaultEndpoint) -> Any:
    return point_settings_at(settings, threaded_fault_endpoint.url)


def make_gateway(name: str = "Delivery API", api_id: str = "dlv0000001", **kwargs: Any) -> Any:
    from aws_ws_async.models import ApiGateway

    return ApiGateway.objects.create(
        api_name=name,
        api_id=api_id,
        stage_name=kwargs.pop("stage_name", "prod"),
        api_created=True,
        deployment_id="dep1",
        **kwargs,
    )


def make_sessions(
    gateway: Any,
    count: int,
    *,
    channel: str = "room",
    prefix: str = "c",
    subscribe: bool = True,
    **kwargs: Any,
) -> list[str]:
    """Create ``count`` connected sessions; returns their connection ids in pk order.

    Like ``$connect`` (``connect_db.subscribe_first_channel``), each session with a channel gets
    the subscription row of that first channel, so channel audiences (``subscribed_to``) see
    it; ``subscribe=False`` makes the pre-subscription rows of a legacy database.
    """
    from aws_ws_async.models import ChannelSubscription, WebSocketSession

    ids = [f"{prefix}{i:05d}=" for i in range(count)]
    rows = WebSocketSession.objects.bulk_create(
        WebSocketSession(connection_id=cid, channel_name=channel, api_gateway=gateway, **kwargs)
        for cid in ids
    )
    if channel and subscribe:
        ChannelSubscription.objects.bulk_create(
            ChannelSubscription(session=r, channel_name=channel, subscribed_at=r.connected_at)
            for r in rows
        )
    return ids


@pytest.fixture
async def close_async_db_connections() -> AsyncIterator[None]:
    """Close the connection the async ORM opened in asgiref's worker thread after the test.

    Without this, PostgreSQL refuses to drop the test database at the end of the session.
    """
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()
