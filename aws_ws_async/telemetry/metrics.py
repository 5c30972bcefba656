"""Prometheus metrics (extra ``[prometheus]``: ``prometheus_client``), created lazily.

Fed from final reports and refusals only, never per post or per request hop, so nothing here
runs in a thread it was not already in. :func:`use_registry` puts the metrics in a private
``CollectorRegistry`` (tests, or a project exposing several registries).
"""

from __future__ import annotations

from typing import Any

_UNSET: Any = object()
_metrics: Any = _UNSET

#: Buckets of broadcast duration, seconds (a single send is milliseconds, a million posts minutes).
DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 30, 60, 300, 1800)

#: Buckets of one @connections attempt's round trip, seconds.
POST_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15)


class Metrics:
    """The package's metric families in one registry."""

    def __init__(self, registry: Any = None) -> None:
        import prometheus_client as prom

        if registry is None:
            registry = prom.REGISTRY
        self.registry = registry
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.posts = prom.Counter(
            "aws_ws_async_posts",
            "Recipients of @connections operations by final outcome and failure reason.",
            ["operation", "outcome", "reason"],
            registry=registry,
        )
        self.retries = prom.Counter(
            "aws_ws_async_retries", "Extra @connections attempts.", ["operation"], registry=registry
        )
        self.throttles = prom.Counter(
            "aws_ws_async_throttles",
            "@connections responses that were 429.",
            ["operation"],
            registry=registry,
        )
        self.refusals = prom.Counter(
            "aws_ws_async_refusals",
            "Requests the views refused, by route and reason code.",
            ["route", "reason"],
            registry=registry,
        )
        self.duration = prom.Histogram(
            "aws_ws_async_operation_duration_seconds",
            "Duration of broadcasts, bulk closes and single sends.",
            ["operation"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.post_latency = prom.Histogram(
            "aws_ws_async_post_latency_seconds",
            "Round trip of each @connections attempt (a retried post counts every attempt).",
            ["kind", "outcome"],
            buckets=POST_LATENCY_BUCKETS,
            registry=registry,
        )
        self.connected = prom.Gauge(
            "aws_ws_async_connected_sessions",
            "Connected WebSocketSession rows per gateway (cached; refreshed on scrape).",
            ["gateway"],
            registry=registry,
        )

    def child(self, family: Any, *labels: str) -> Any:
        """``family.labels(*labels)``, resolved once (``labels()`` costs microseconds; the
        label sets are few: operations x outcomes x reasons)."""
        key = (id(family), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = family.labels(*labels)
        return found

    def record(self, fields: dict[str, Any]) -> None:
        """One finished operation: its counts and its duration."""
        self.count(fields)
        self.child(self.duration, fields["ws_operation"]).observe(fields["ws_duration"])

    def count(self, fields: dict[str, Any]) -> None:
        """The counters of a report (a finished operation, or one page of a shard)."""
        op = fields["ws_operation"]
        if fields["ws_delivered"]:
            self.child(self.posts, op, "delivered", "").inc(fields["ws_delivered"])
        if fields["ws_gone"]:
            self.child(self.posts, op, "gone", "").inc(fields["ws_gone"])
        for reason, count in fields["ws_failed_reasons"].items():
            self.child(self.posts, op, "failed", reason).inc(count)
        if fields["ws_retries"]:
            self.child(self.retries, op).inc(fields["ws_retries"])
        if fields["ws_throttled"]:
            self.child(self.throttles, op).inc(fields["ws_throttled"])


def get_metrics() -> Metrics | None:
    """The metrics in the default registry (made on first use), or None without the client."""
    global _metrics
    if _metrics is _UNSET:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            _metrics = None
        else:
            _metrics = Metrics()
    metrics: Metrics | None = _metrics
    return metrics


def use_registry(registry: Any) -> Metrics:
    """Keep the metrics in ``registry`` from now on (tests: a fresh ``CollectorRegistry``)."""
    global _metrics
    metrics = _metrics = Metrics(registry)
    return metrics
