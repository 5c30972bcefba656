"""Fixtures and helpers of the enqueued-broadcast tests (a real task backend, small shards)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from aws_ws_async.scaleout.framework import task_api
from tests.fixtures_delivery import make_gateway

API = task_api().__name__


def backend(kind: str) -> dict[str, Any]:
    return {"default": {"BACKEND": f"{API}.backends.{kind.lower()}.{kind}Backend"}}


def recorded() -> list[Any]:
    """What the DummyBackend was asked to run: (task name, args)."""
    return [(r.task.name, list(r.args)) for r in task_api().task_backends["default"].results]


def sessions(count: int, channel: str = "room", gateway: Any = None) -> list[Any]:
    """``count`` sessions of ``channel`` on one gateway, connected an hour ago, in pk order.

    Each gets its first channel's subscription row, as ``$connect`` inserts it.
    """
    from aws_ws_async.models import ChannelSubscription, WebSocketSession

    gateway = gateway or make_gateway()
    since = timezone.now() - timedelta(hours=1)  # older than gone_grace_seconds: 410 marks
    rows = [
        WebSocketSession(
            connection_id=f"{channel[:4]}{i:05d}=",
            channel_name=channel,
            api_gateway=gateway,
            connected_at=since,
        )
        for i in range(count)
    ]
    created = WebSocketSession.objects.bulk_create(rows)
    ChannelSubscription.objects.bulk_create(
        ChannelSubscription(session=r, channel_name=channel, subscribed_at=since) for r in created
    )
    return created


@pytest.fixture
def small_shards(threaded_fault_settings: Any) -> Any:
    threaded_fault_settings.AWS_WS_ASYNC = {
        **threaded_fault_settings.AWS_WS_ASYNC,
        "broadcast_shard_size": 10,
        "broadcast_checkpoint_every": 4,
        "broadcast_lease_seconds": 30.0,
    }
    return threaded_fault_settings
