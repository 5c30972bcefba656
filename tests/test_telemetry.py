"""Telemetry matches the report: spans (OpenTelemetry's in-memory exporter), counters (a private
Prometheus registry), structured log fields (a JSON formatter) and the dashboard's memory.

The broadcast runs against the fault endpoint with 410s, 429s (retried and exhausted), 5xx
(retried and exhausted) and a 403, so every outcome and reason has a non-trivial count.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from asgiref.sync import sync_to_async

pytest.importorskip("opentelemetry.sdk")
prometheus_client = pytest.importorskip("prometheus_client")

from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from aws_ws_async.models import WebSocketSession  # noqa: E402
from aws_ws_async.telemetry import recent, tracing  # noqa: E402
from aws_ws_async.testing import FaultEndpoint  # noqa: E402
from tests.fixtures_delivery import make_gateway, make_sessions  # noqa: E402
from tests.fixtures_telemetry import faulty_broadcast, sample  # noqa: E402
from tests.fixtures_views import (  # noqa: E402
    Browser,
    connect,
    gateway_headers,
    new_connection_id,
    post,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_async_db_connections"),
]


async def test_broadcast_span_and_counters_match_the_report_under_faults(
    fault_settings: Any, fault_endpoint: FaultEndpoint, spans: InMemorySpanExporter, registry: Any
) -> None:
    report = await faulty_broadcast(fault_endpoint, exhaust_429=True)
    assert (report.delivered_count, len(report.gone), len(report.failed)) == (29, 6, 5)
    assert report.throttled == 4 + 7  # four 429s once, one 429 on all 1 + 6 attempts
    assert report.retries == 4 + 6 + 3 * 2  # the throttled retried, the 5xx twice each

    [span] = [s for s in spans.get_finished_spans() if s.name == "aws_ws_async.broadcast"]
    attrs = dict(span.attributes or {})
    assert attrs["aws_ws_async.recipients"] == report.total == 40
    assert attrs["aws_ws_async.delivered"] == report.delivered_count
    assert attrs["aws_ws_async.gone"] == len(report.gone)
    assert attrs["aws_ws_async.failed"] == len(report.failed)
    assert attrs["aws_ws_async.failed_reasons.server_error"] == 3
    assert attrs["aws_ws_async.failed_reasons.forbidden"] == 1
    assert attrs["aws_ws_async.failed_reasons.throttled"] == 1
    assert attrs["aws_ws_async.retries"] == report.retries
    assert attrs["aws_ws_async.throttled"] == report.throttled
    assert attrs["aws_ws_async.lowest_concurrency"] == report.lowest_concurrency
    assert attrs["aws_ws_async.gateways"] == 1
    assert attrs["aws_ws_async.duration"] == pytest.approx(report.duration, abs=1e-5)
    assert span.end_time is not None
    assert span.start_time is not None
    assert (span.end_time - span.start_time) / 1e9 == pytest.approx(report.duration, abs=0.05)
    text = json.dumps(attrs)
    assert "hello" not in text
    assert "world" not in text
    assert not any(cid in text for cid in report.gone)  # never connection ids

    posts = "aws_ws_async_posts_total"
    labels = {"operation": "broadcast"}
    assert sample(registry, posts, **labels, outcome="delivered", reason="") == 29
    assert sample(registry, posts, **labels, outcome="gone", reason="") == 6
    assert sample(registry, posts, **labels, outcome="failed", reason="server_error") == 3
    assert sample(registry, posts, **labels, outcome="failed", reason="forbidden") == 1
    assert sample(registry, posts, **labels, outcome="failed", reason="throttled") == 1
    assert sample(registry, "aws_ws_async_retries_total", **labels) == report.retries
    assert sample(registry, "aws_ws_async_throttles_total", **labels) == report.throttled
    count = "aws_ws_async_operation_duration_seconds_count"
    assert sample(registry, count, **labels) == 1
    total = "aws_ws_async_operation_duration_seconds_sum"
    assert sample(registry, total, **labels) == pytest.approx(report.duration, abs=1e-5)

    [kept] = recent.recent_reports()
    assert (kept["ws_delivered"], kept["ws_gone"], kept["ws_failed"]) == (29, 6, 5)


async def test_single_send_has_its_own_span(
    fault_settings: Any, fault_endpoint: FaultEndpoint, spans: InMemorySpanExporter, registry: Any
) -> None:
    gateway = await sync_to_async(make_gateway)()
    [cid] = await sync_to_async(make_sessions)(gateway, 1)
    fault_endpoint.plan.gone = {cid}
    session = await WebSocketSession.objects.aget(connection_id=cid)
    report = await session.asend_message("hi")
    assert report.gone == [cid]
    [span] = [s for s in spans.get_finished_spans() if s.name == "aws_ws_async.session_send"]
    assert dict(span.attributes or {})["aws_ws_async.gone"] == 1
    posts = "aws_ws_async_posts_total"
    assert sample(registry, posts, operation="session_send", outcome="gone", reason="") == 1


async def test_summary_log_record_prints_its_fields_as_json_keys(
    fault_settings: Any, fault_endpoint: FaultEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aws_ws_async.sending")
    report = await faulty_broadcast(fault_endpoint)
    [record] = [r for r in caplog.records if r.name == "aws_ws_async.sending"]
    formatter = JsonFormatter()
    line = json.loads(formatter.format(record))
    assert line["ws_operation"] == "broadcast"
    assert line["ws_delivered"] == report.delivered_count
    assert line["ws_gone"] == len(report.gone)
    assert line["ws_failed_reasons"] == {"server_error": 3, "forbidden": 1}
    assert line["ws_retries"] == report.retries
    assert line["ws_throttled"] == report.throttled


class JsonFormatter(logging.Formatter):
    """The documented stdlib-only JSON formatter (docs/observability.md), copied verbatim."""

    RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in record.__dict__.items() if k not in self.RESERVED}
        line = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        return json.dumps({**line, **fields}, default=str)


async def test_refusal_counts_and_names_the_request_span(
    ws_settings: Any, gateway: Any, browser: Browser, registry: Any, spans: InMemorySpanExporter
) -> None:
    tracer = tracing._tracer()
    with tracer.start_as_current_span("request") as request_span:
        response = await connect(browser, new_connection_id(), origin=None)
    assert response.status_code == 400
    attrs = dict(request_span.attributes or {})
    assert attrs["aws_ws_async.route"] == "connect"
    reason = attrs["aws_ws_async.reason"]
    assert reason == "missing_header"
    assert sample(registry, "aws_ws_async_refusals_total", route="connect", reason=reason) == 1
    assert recent.recent_refusals() == {("connect", reason): 1}


async def test_message_names_its_handler_on_the_request_span(
    ws_settings: Any, gateway: Any, browser: Browser, spans: InMemorySpanExporter
) -> None:
    cid = new_connection_id()
    assert (await connect(browser, cid)).status_code == 200
    tracer = tracing._tracer()
    with tracer.start_as_current_span("request") as request_span:
        raw = json.dumps({"action": "echo"}).encode()
        response = await post("/ws/default", gateway_headers(cid), raw)
    assert response.status_code == 200, response.content
    attrs = dict(request_span.attributes or {})
    assert (attrs["aws_ws_async.route"], attrs["aws_ws_async.handler"]) == ("default", "echo")


async def test_x_amzn_trace_id_seeds_the_broadcast_trace(
    fault_settings: Any, fault_endpoint: FaultEndpoint, spans: InMemorySpanExporter, registry: Any
) -> None:
    """The documented wiring: the X-Ray propagator turns API Gateway's header into the parent."""
    xray = pytest.importorskip("opentelemetry.propagators.aws")
    from opentelemetry import context as otel_context

    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    parent = xray.AwsXRayPropagator().extract({"X-Amzn-Trace-Id": header})
    token = otel_context.attach(parent)
    try:
        gateway = await sync_to_async(make_gateway)()
        await sync_to_async(make_sessions)(gateway, 3)
        await WebSocketSession.objects.all().asend_message("hi")
    finally:
        otel_context.detach(token)
    [span] = [s for s in spans.get_finished_spans() if s.name == "aws_ws_async.broadcast"]
    assert format(span.context.trace_id, "032x") == "5759e988bd862e3fe1be46a994272793"
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == "53995c3f42cd8ad8"


def page_spans(spans: InMemorySpanExporter, parent: Any) -> list[Any]:
    pages = [s for s in spans.get_finished_spans() if s.name == "aws_ws_async.db_page"]
    assert pages
    for page in pages:
        assert page.parent is not None
        assert page.parent.span_id == parent.context.span_id
    return pages


async def test_database_pages_are_child_spans_of_the_broadcast(
    fault_settings: Any, fault_endpoint: FaultEndpoint, spans: InMemorySpanExporter, registry: Any
) -> None:
    report = await faulty_broadcast(fault_endpoint)  # 40 rows read 9 at a time
    [span] = [s for s in spans.get_finished_spans() if s.name == "aws_ws_async.broadcast"]
    pages = page_spans(spans, span)
    rows = [dict(p.attributes or {})["aws_ws_async.rows"] for p in pages]
    assert sum(rows) == report.total == 40
    assert max(rows) == 9
    assert dict(span.attributes or {})["aws_ws_async.delivered"] == report.delivered_count


def test_sync_broadcast_span_and_pages_match_its_report(
    threaded_fault_settings: Any,
    threaded_fault_endpoint: FaultEndpoint,
    spans: InMemorySpanExporter,
    registry: Any,
) -> None:
    gateway = make_gateway()
    ids = make_sessions(gateway, 25, channel="room")
    threaded_fault_endpoint.plan.gone = set(ids[:5])
    threaded_fault_endpoint.plan.status_for = {ids[5]: 500}
    report = WebSocketSession.objects.for_channel("room").send_message("hi", db_chunk_size=10)
    assert (report.delivered_count, len(report.gone), len(report.failed)) == (19, 5, 1)
    [span] = [s for s in spans.get_finished_spans() if s.name == "aws_ws_async.broadcast"]
    attrs = dict(span.attributes or {})
    assert (attrs["aws_ws_async.delivered"], attrs["aws_ws_async.gone"]) == (19, 5)
    assert attrs["aws_ws_async.failed_reasons.server_error"] == 1
    assert attrs["aws_ws_async.retries"] == report.retries
    rows = [dict(p.attributes or {})["aws_ws_async.rows"] for p in page_spans(spans, span)]
    assert sorted(rows) == [5, 10, 10]
    posts = "aws_ws_async_posts_total"
    assert sample(registry, posts, operation="broadcast", outcome="gone", reason="") == 5


async def test_a_stopped_broadcast_gets_an_error_span_with_its_partial_counts(
    fault_settings: Any, fault_endpoint: FaultEndpoint, spans: InMemorySpanExporter, registry: Any
) -> None:
    from aws_ws_async.exceptions import BroadcastTimeout

    gateway = await sync_to_async(make_gateway)()
    ids = await sync_to_async(make_sessions)(gateway, 6)
    fault_endpoint.plan.hang_ids = {ids[0]}
    fault_endpoint.plan.hang_seconds = 5.0
    with pytest.raises(BroadcastTimeout) as caught:
        await WebSocketSession.objects.all().asend_message("hi", timeout=0.5)
    partial = caught.value.report
    [span] = [s for s in spans.get_finished_spans() if s.name == "aws_ws_async.broadcast"]
    assert span.status.status_code.name == "ERROR"
    attrs = dict(span.attributes or {})
    assert attrs["aws_ws_async.delivered"] == partial.delivered_count == 5
    assert attrs["aws_ws_async.failed_reasons.cancelled"] == 1
    posts = "aws_ws_async_posts_total"
    labels = {"operation": "broadcast", "outcome": "failed", "reason": "cancelled"}
    assert sample(registry, posts, **labels) == 1
