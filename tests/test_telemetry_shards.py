"""Enqueued broadcasts' shards emit telemetry that matches the persisted counts.

``aws_ws_async.telemetry.start_shard`` is the API the scale-out runner calls (one
``ShardTrace`` per shard attempt: a span ``aws_ws_async.broadcast_shard``, a ``db_page`` child
per page, the page's counters as soon as it is posted, the duration once). The whole path runs
on the framework's ImmediateBackend (tasks inline) against the threaded FaultEndpoint.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("prometheus_client")

from aws_ws_async import aws, sync, telemetry
from aws_ws_async.delivery import DeliveryReport, Engine, Failure
from aws_ws_async.models import BroadcastStatus, WebSocketSession
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_scaleout import backend, sessions
from tests.fixtures_telemetry import sample

SHARD = "aws_ws_async.broadcast_shard"

POSTS = "aws_ws_async_posts_total"


def named(spans: Any, name: str) -> list[Any]:
    return [s for s in spans.get_finished_spans() if s.name == name]


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes or {})


@pytest.mark.django_db(transaction=True)
def test_enqueued_shards_spans_and_counters_match_the_broadcast(
    small_shards: Any,
    threaded_fault_endpoint: FaultEndpoint,
    spans: Any,
    registry: Any,
    every_post_traced: None,
) -> None:
    small_shards.TASKS = backend("Immediate")
    rows = sessions(25)
    ids = [r.connection_id for r in rows]
    threaded_fault_endpoint.plan.gone = {ids[3], ids[17], ids[24]}
    threaded_fault_endpoint.plan.status_for = {ids[8]: 403}
    broadcast = WebSocketSession.objects.for_channel("room").enqueue_message({"n": 1})
    result = broadcast.wait_result(timeout=30)
    assert result.status == BroadcastStatus.FINISHED
    assert (result.delivered, result.gone, result.failed) == (21, 3, 1)

    shards = named(spans, SHARD)
    assert len(shards) == result.shards_total == 3
    assert {attrs(s)["aws_ws_async.broadcast_id"] for s in shards} == {broadcast.pk}
    assert len({attrs(s)["aws_ws_async.shard_id"] for s in shards}) == 3
    assert all(attrs(s)["aws_ws_async.attempt"] >= 1 for s in shards)
    for key, total in (("delivered", 21), ("gone", 3), ("failed", 1), ("recipients", 25)):
        assert sum(attrs(s)[f"aws_ws_async.{key}"] for s in shards) == total, key
    assert sum(attrs(s).get("aws_ws_async.failed_reasons.forbidden", 0) for s in shards) == 1
    assert all(s.status.status_code.name != "ERROR" for s in shards)

    by_id = {s.context.span_id: s for s in shards}
    pages = named(spans, "aws_ws_async.db_page")
    assert {p.parent.span_id for p in pages} <= set(by_id)
    assert sum(attrs(p)["aws_ws_async.rows"] for p in pages) == 25
    attempts = named(spans, "aws_ws_async.post_attempt")
    assert len(attempts) == 25  # one attempt each (no retries in this plan)
    assert {a.parent.span_id for a in attempts} <= set(by_id)  # carried onto the portal

    labels = {"operation": "broadcast_shard"}
    assert sample(registry, POSTS, **labels, outcome="delivered", reason="") == 21
    assert sample(registry, POSTS, **labels, outcome="gone", reason="") == 3
    assert sample(registry, POSTS, **labels, outcome="failed", reason="forbidden") == 1
    duration = "aws_ws_async_operation_duration_seconds_count"
    assert sample(registry, duration, **labels) == 3


@pytest.mark.django_db(transaction=True)
def test_shard_trace_sums_its_pages_and_ends_once(
    threaded_fault_settings: Any,
    threaded_fault_endpoint: FaultEndpoint,
    spans: Any,
    registry: Any,
    every_post_traced: None,
) -> None:
    """The API itself: pages summed, a lost page (None) not counted, bind() carries the span
    into portal work, an error ends the span with status ERROR once."""
    import time

    from django.conf import settings

    url = settings.AWS_WS_ASYNC["management_endpoint_url"]
    threaded_fault_endpoint.plan.gone = {"p1="}
    shard = telemetry.start_shard(7, 70, attempt=2, db="default")

    async def post_page() -> DeliveryReport:
        engine = Engine(await aws.get_transport(url, 10))
        return await engine.post(["p0=", "p1=", "p2="], b"hi")

    began = time.perf_counter()
    first = sync.submit(shard.bind(post_page)).result(timeout=30)
    shard.page(began, 3, first, gateway_id=1)
    failed = DeliveryReport(delivered_count=1, concurrency=4, lowest_concurrency=2)
    failed.failed.append(Failure("p4=", "server_error", 500, "boom", 3))
    failed.retries = 2
    shard.page(None, 2, failed, gateway_id=1)
    shard.page(time.perf_counter(), 5, None)  # the lease was lost: nothing counted
    fields = shard.end(error="LeaseLost")
    assert shard.end() is fields

    [span] = named(spans, SHARD)
    assert span.status.status_code.name == "ERROR"
    a = attrs(span)
    assert (a["aws_ws_async.delivered"], a["aws_ws_async.gone"], a["aws_ws_async.failed"]) == (
        3,
        1,
        1,
    )
    assert a["aws_ws_async.failed_reasons.server_error"] == 1
    assert (a["aws_ws_async.retries"], a["aws_ws_async.recipients"]) == (2, 5)
    assert (a["aws_ws_async.broadcast_id"], a["aws_ws_async.shard_id"]) == (7, 70)
    assert (a["aws_ws_async.attempt"], a["aws_ws_async.db"]) == (2, "default")
    assert a["aws_ws_async.lowest_concurrency"] == 2
    pages = named(spans, "aws_ws_async.db_page")
    assert sorted(attrs(p)["aws_ws_async.rows"] for p in pages) == [3, 5]
    attempts = named(spans, "aws_ws_async.post_attempt")
    assert len(attempts) == 3
    assert {x.parent.span_id for x in attempts} == {span.context.span_id}

    labels = {"operation": "broadcast_shard"}
    assert sample(registry, POSTS, **labels, outcome="delivered", reason="") == 3
    assert sample(registry, POSTS, **labels, outcome="failed", reason="server_error") == 1
    assert sample(registry, "aws_ws_async_retries_total", **labels) == 2
    duration = "aws_ws_async_operation_duration_seconds_count"
    assert sample(registry, duration, **labels) == 1  # ended once
