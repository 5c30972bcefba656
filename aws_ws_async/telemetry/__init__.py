"""Observability hooks: OpenTelemetry spans, Prometheus metrics, structured fields, recent reports.

Every integration is optional and imported lazily: without ``opentelemetry-api`` (extra
``[otel]``) no span is made, without ``prometheus_client`` (extra ``[prometheus]``) no metric
is kept, and the hooks cost one attribute check. The hooks are fed by the *final*
:class:`~aws_ws_async.delivery.DeliveryReport` of a broadcast, close or single send, so their
cost does not grow with the number of recipients; the one per-post hook (:mod:`.posts`: a
latency histogram, sampled spans) is ``None`` in the engine, one test per attempt, when there is
nothing to record. Enqueued shards report through :mod:`.shards`.

This package is an edge helper: it imports nothing of ours but ``delivery.report`` values it is
handed, so every layer may call it.
"""

from __future__ import annotations

from aws_ws_async.telemetry.events import report_fields
from aws_ws_async.telemetry.hooks import delivery_finished, refusal, start_operation
from aws_ws_async.telemetry.posts import PostObserver, configure, post_observer
from aws_ws_async.telemetry.recent import recent_refusals, recent_reports
from aws_ws_async.telemetry.shards import ShardTrace, start_shard
from aws_ws_async.telemetry.tracing import annotate_request

__all__ = [
    "PostObserver",
    "ShardTrace",
    "annotate_request",
    "configure",
    "delivery_finished",
    "post_observer",
    "recent_refusals",
    "recent_reports",
    "refusal",
    "report_fields",
    "start_operation",
    "start_shard",
]
