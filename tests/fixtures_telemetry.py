"""Telemetry fixtures: an SDK tracer provider with OpenTelemetry's in-memory exporter, a private
Prometheus registry, and the broadcast under faults whose report the telemetry must match.

The extras are imported inside the fixtures, so this plugin loads without them (the tests that
use it skip themselves with ``importorskip``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from aws_ws_async.delivery import DeliveryReport
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway, make_sessions

#: The plan of :func:`faulty_broadcast` (40 recipients), attempt by attempt.
FAULTY = {
    "recipients": 40,
    "gone": 6,  # ids 0-5: 410
    "throttled_once": 4,  # ids 6-9: 429, then 200
    "server_error": 3,  # ids 10-12: 5xx on every attempt (1 + max_transient_retries=2)
    "forbidden": 1,  # id 13: 403
    "throttled_out": 1,  # id 14: 429 on every attempt (1 + max_throttle_retries=6)
}


@pytest.fixture
def spans() -> Iterator[Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from aws_ws_async.telemetry import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_tracer_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_tracer_provider(None)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    import prometheus_client

    from aws_ws_async.telemetry import metrics as metrics_module
    from aws_ws_async.telemetry import recent

    monkeypatch.setattr(metrics_module, "_metrics", metrics_module._UNSET)
    registry = prometheus_client.CollectorRegistry()
    metrics_module.use_registry(registry)
    recent.clear()
    return registry


@pytest.fixture
def every_post_traced() -> Iterator[None]:
    """Sample every attempt (``post_span_rate=1``), restored afterwards."""
    from aws_ws_async import telemetry
    from aws_ws_async.telemetry.posts import config

    before = config.post_span_rate
    telemetry.configure(post_span_rate=1.0)
    try:
        yield
    finally:
        telemetry.configure(post_span_rate=before)


def sample(registry: Any, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


async def faulty_broadcast(fault_endpoint: FaultEndpoint, *, exhaust_429: bool = False) -> Any:
    """40 sessions on channel "room", broadcast 4 at a time, read 9 rows a page (see FAULTY);
    ``exhaust_429`` adds id 14 answering 429 on every attempt (failed, reason throttled)."""
    from aws_ws_async.models import WebSocketSession

    gateway = await sync_to_async(make_gateway)()
    ids = await sync_to_async(make_sessions)(gateway, 40, channel="room")
    plan = fault_endpoint.plan
    plan.gone = set(ids[0:6])
    plan.throttle_first, plan.throttle_ids = 1, set(ids[6:10])  # 429 once, then delivered
    plan.server_error_first, plan.server_error_ids = 99, set(ids[10:13])  # 5xx to the end
    plan.status_for = {ids[13]: 403}
    if exhaust_429:
        plan.status_for[ids[14]] = 429
    report: DeliveryReport = await WebSocketSession.objects.for_channel("room").asend_message(
        {"hello": "world"}, concurrency=4, db_chunk_size=9
    )
    return report
