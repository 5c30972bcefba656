"""Per-post telemetry matches the report attempt by attempt, and costs nothing when off.

The broadcast under faults (``tests.fixtures_telemetry.FAULTY``: 410s, 429 once, 429 on every
attempt, 5xx on every attempt, a 403) has a known number of attempts per verdict, so the latency
histogram's counts and the sampled spans (every attempt sampled here) must equal them exactly.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")
pytest.importorskip("prometheus_client")

from aws_ws_async import telemetry
from aws_ws_async.models import WebSocketSession
from aws_ws_async.telemetry import tracing
from aws_ws_async.telemetry.posts import config
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway, make_sessions
from tests.fixtures_telemetry import FAULTY, faulty_broadcast, sample

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_async_db_connections"),
]

LATENCY = "aws_ws_async_post_latency_seconds"

#: Attempts per verdict of the faulty broadcast with ``exhaust_429``.
ATTEMPTS = {
    "delivered": FAULTY["recipients"]
    - FAULTY["gone"]
    - FAULTY["server_error"]
    - FAULTY["forbidden"]
    - FAULTY["throttled_out"],
    "gone": FAULTY["gone"],
    "throttled": FAULTY["throttled_once"] + 7 * FAULTY["throttled_out"],
    "transient": 3 * FAULTY["server_error"],
    "failed": FAULTY["forbidden"],
}


def attempt_spans(spans: Any, name: str = "aws_ws_async.post_attempt") -> list[Any]:
    return [s for s in spans.get_finished_spans() if s.name == name]


async def test_latency_histogram_and_sampled_spans_match_the_attempts(
    fault_settings: Any,
    fault_endpoint: FaultEndpoint,
    spans: Any,
    registry: Any,
    every_post_traced: None,
) -> None:
    report = await faulty_broadcast(fault_endpoint, exhaust_429=True)
    assert report.total + report.retries == sum(ATTEMPTS.values())
    assert report.delivered_count == ATTEMPTS["delivered"]
    assert report.throttled == ATTEMPTS["throttled"]

    for verdict, attempts in ATTEMPTS.items():
        count = sample(registry, f"{LATENCY}_count", kind="post", outcome=verdict)
        assert count == attempts, verdict
    assert sample(registry, f"{LATENCY}_sum", kind="post", outcome="delivered") > 0
    buckets = f"{LATENCY}_bucket"
    every = sample(registry, buckets, kind="post", outcome="delivered", le="+Inf")
    assert every == ATTEMPTS["delivered"]

    [broadcast] = [s for s in spans.get_finished_spans() if s.name == "aws_ws_async.broadcast"]
    children = attempt_spans(spans)
    assert len(children) == sum(ATTEMPTS.values())
    for child in children:
        assert child.parent is not None
        assert child.parent.span_id == broadcast.context.span_id
        assert child.context.trace_id == broadcast.context.trace_id
    verdicts = Counter(dict(c.attributes or {})["aws_ws_async.verdict"] for c in children)
    assert verdicts == Counter(ATTEMPTS)
    statuses = Counter(dict(c.attributes or {})["aws_ws_async.status"] for c in children)
    assert statuses[410] == ATTEMPTS["gone"]
    assert statuses[429] == ATTEMPTS["throttled"]
    assert statuses[403] == 1
    retried = [c for c in children if dict(c.attributes or {})["aws_ws_async.attempt"] > 1]
    assert len(retried) == report.retries
    text = json.dumps([dict(c.attributes or {}) for c in children])
    assert "hello" not in text
    assert not any(cid in text for cid in report.gone)  # never connection ids


async def test_default_rate_samples_a_few_and_spans_need_a_recording_parent(
    fault_settings: Any, fault_endpoint: FaultEndpoint, spans: Any, registry: Any
) -> None:
    """At the default rate (1%) 40 posts make few spans; a single send makes none of its own
    (no recording span around it: its ``session_send`` span is the post's)."""
    assert config.post_span_rate == 0.01
    report = await faulty_broadcast(fault_endpoint)
    assert len(attempt_spans(spans)) < report.total
    spans.clear()
    telemetry.configure(post_span_rate=1.0)
    try:
        session = await WebSocketSession.objects.aget(connection_id="c00030=")
        await session.asend_message("one")
    finally:
        telemetry.configure(post_span_rate=0.01)
    assert attempt_spans(spans) == []
    assert [s.name for s in spans.get_finished_spans()] == ["aws_ws_async.session_send"]
    count = sample(registry, f"{LATENCY}_count", kind="post", outcome="delivered")
    assert count == report.delivered_count + 1  # the histogram still sees the single send


def test_sync_broadcast_attempt_spans_nest_under_its_span(
    threaded_fault_settings: Any,
    threaded_fault_endpoint: FaultEndpoint,
    spans: Any,
    registry: Any,
    every_post_traced: None,
) -> None:
    """The sync twin posts on the portal (an empty context): the span is carried over."""
    gateway = make_gateway()
    ids = make_sessions(gateway, 12, channel="room")
    threaded_fault_endpoint.plan.gone = set(ids[:2])
    report = WebSocketSession.objects.for_channel("room").send_message("hi", db_chunk_size=5)
    [broadcast] = [s for s in spans.get_finished_spans() if s.name == "aws_ws_async.broadcast"]
    children = attempt_spans(spans)
    assert len(children) == report.total == 12
    assert {c.parent.span_id for c in children} == {broadcast.context.span_id}
    gone = sample(registry, f"{LATENCY}_count", kind="post", outcome="gone")
    assert gone == 2


async def test_a_bulk_close_labels_its_attempts_delete(
    fault_settings: Any,
    fault_endpoint: FaultEndpoint,
    spans: Any,
    registry: Any,
    every_post_traced: None,
) -> None:
    from asgiref.sync import sync_to_async

    gateway = await sync_to_async(make_gateway)()
    ids = await sync_to_async(make_sessions)(gateway, 5)
    fault_endpoint.plan.gone = {ids[0]}
    report = await WebSocketSession.objects.all().adisconnect()
    assert report.total == 5
    count = sample(registry, f"{LATENCY}_count", kind="delete", outcome="delivered")
    assert count == 4
    assert sample(registry, f"{LATENCY}_count", kind="delete", outcome="gone") == 1
    assert len(attempt_spans(spans, "aws_ws_async.delete_attempt")) == 5


def test_nothing_to_record_means_no_observer(
    monkeypatch: pytest.MonkeyPatch, registry: Any
) -> None:
    """The engine's per-attempt hook is None (one test per attempt, no call) unless something
    records: metrics on, or a recording span current with a rate above 0."""
    assert telemetry.post_observer("post") is not None  # the histogram
    monkeypatch.setattr(config, "post_latency", False)
    assert telemetry.post_observer("post") is None  # no span current
    tracer = tracing.tracer()
    with tracer.start_as_current_span("no SDK here"):  # the API's no-op provider
        assert telemetry.post_observer("post") is None


def test_configure_refuses_a_rate_outside_0_1() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        telemetry.configure(post_span_rate=1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        telemetry.configure(post_span_rate=-0.1)
    assert config.post_span_rate == 0.01
