"""Per-post telemetry: one latency observation per attempt, a span for a sampled few.

The engine asks :func:`post_observer` once per run (a broadcast page, a single send) and gets
``None`` when there is nothing to record: no ``prometheus_client`` (or ``post_latency`` off) and
no recording span current (or ``post_span_rate`` 0). Then its per-attempt cost is one ``is not
None`` test, with no call and no allocation. With an observer, each attempt costs one histogram
``observe`` (a child resolved once per outcome per run), and a sampled attempt one span.

Sampled spans are children of the span current when the run started (the broadcast's or a
shard's span, or a request span), never roots: a post without a traced operation around it is
already the single send's span. They carry the status, verdict and attempt number, never the
connection id or the payload.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from aws_ws_async.telemetry import tracing
from aws_ws_async.telemetry.metrics import Metrics, get_metrics


@dataclass(slots=True)
class TelemetryConfig:
    """Per-post telemetry knobs (set with :func:`configure`, e.g. in ``AppConfig.ready``)."""

    #: Fraction of attempts that get a span under a recording parent (0 disables them).
    post_span_rate: float = 0.01
    #: Observe every attempt's round trip in ``aws_ws_async_post_latency_seconds``.
    post_latency: bool = True


config = TelemetryConfig()


def configure(
    *, post_span_rate: float | None = None, post_latency: bool | None = None
) -> TelemetryConfig:
    """Change the per-post knobs; returns the config. ``post_span_rate`` must be in [0, 1]."""
    if post_span_rate is not None:
        rate = float(post_span_rate)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"post_span_rate must be between 0 and 1, not {post_span_rate!r}")
        config.post_span_rate = rate
    if post_latency is not None:
        config.post_latency = bool(post_latency)
    return config


class PostObserver:
    """What one engine run records per attempt (made by :func:`post_observer`)."""

    __slots__ = ("_children", "_kind", "_metrics", "_name", "_parent", "_rate", "_tracer")

    def __init__(self, kind: str, metrics: Metrics | None, parent: Any, rate: float) -> None:
        self._kind = kind
        self._name = f"aws_ws_async.{kind}_attempt"
        self._metrics = metrics
        self._children: dict[str, Any] = {}
        self._parent = parent
        self._rate = rate
        self._tracer: Any = tracing.tracer() if parent is not None else None

    def attempt(self, seconds: float, verdict: str, status: int, attempt: int) -> None:
        """One attempt took ``seconds`` and was classified ``verdict`` (HTTP ``status``)."""
        metrics = self._metrics
        if metrics is not None:
            child = self._children.get(verdict)
            if child is None:
                child = metrics.child(metrics.post_latency, self._kind, verdict)
                self._children[verdict] = child
            child.observe(seconds)
        if self._parent is not None and random.random() < self._rate:
            end_ns = time.time_ns()
            attributes = {
                tracing.PREFIX + "verdict": verdict,
                tracing.PREFIX + "status": status,
                tracing.PREFIX + "attempt": attempt,
            }
            span = self._tracer.start_span(
                self._name,
                context=self._parent,
                start_time=end_ns - int(seconds * 1e9),
                attributes=attributes,
            )
            span.end(end_time=end_ns)


def post_observer(kind: str) -> PostObserver | None:
    """The observer of one engine run of ``kind`` (``post``, ``delete``...), or None (no-op)."""
    metrics = get_metrics() if config.post_latency else None
    parent = tracing.recording_context() if config.post_span_rate > 0 else None
    if metrics is None and parent is None:
        return None
    return PostObserver(kind, metrics, parent, config.post_span_rate)
