"""Telemetry on and off for ``benchmarks.broadcast --telemetry``.

"On" is configured as in production: an OpenTelemetry SDK ``TracerProvider`` with a
``BatchSpanProcessor`` (:class:`NamesExporter` stands in for OTLP), the package's metrics in a
private Prometheus registry (so the per-attempt latency histogram is on too) and 1 % of the
attempts sampled as spans. "Off" is no telemetry at all: no provider (the API's no-op) and no
metrics, the same as a project without the extras.

Whole-run comparisons (a scenario on, then off) suffer from a shared machine's load drifting
between runs by more than the 5 % being measured. :func:`alternating` therefore toggles
telemetry every block of a few sends *inside one loop*, adding up the CPU of the "off" and the
"on" blocks separately (order off, on, on, off, ... so neither mode always goes first): slow
drift then hits both modes alike.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, Protocol

#: The default sampling of per-attempt spans (``aws_ws_async.telemetry.configure``).
POST_SPAN_RATE = 0.01


class RunLike(Protocol):
    cpu: float


class NamesExporter:
    """A span exporter that keeps only the names it saw (an exporter keeping every span, like
    the SDK's in-memory one, makes the garbage collector's full passes slower and slower as
    the spans pile up: a cost no deployment pays). OTLP's serialisation is not measured."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.names.update(span.name for span in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class Switch:
    """Telemetry that can be turned on and off cheaply, many times in one process."""

    def __init__(self, rate: float = POST_SPAN_RATE, trace_ratio: float | None = None) -> None:
        from opentelemetry.sdk.trace import TracerProvider, sampling
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from prometheus_client import CollectorRegistry

        from aws_ws_async.telemetry import metrics

        self.rate = rate
        self.exporter = NamesExporter()
        # trace_ratio: the SDK's usual production sampler, ParentBased(TraceIdRatioBased(r))
        sampler = None
        if trace_ratio is not None:
            sampler = sampling.ParentBased(sampling.TraceIdRatioBased(trace_ratio))
        self.provider = TracerProvider(sampler=sampler)
        # The SDK's defaults (a batch every 5 s or 512 spans), as deployed.
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.metrics = metrics.Metrics(CollectorRegistry())
        off()

    @contextlib.contextmanager
    def on(self) -> Iterator[None]:
        """Telemetry on inside the block (spans are exported by :meth:`flush`)."""
        from aws_ws_async import telemetry
        from aws_ws_async.telemetry import metrics, tracing

        tracing.use_tracer_provider(self.provider)
        metrics._metrics = self.metrics
        telemetry.configure(post_span_rate=self.rate)
        try:
            yield
        finally:
            off()

    def flush(self) -> float:
        """Export what the "on" blocks made; returns the CPU seconds it took."""
        cpu0 = time.process_time()
        self.provider.force_flush()
        return time.process_time() - cpu0

    def span_names(self) -> set[str]:
        return self.exporter.names

    def close(self) -> None:
        self.provider.shutdown()


def off() -> None:
    """No telemetry: the API's no-op provider, no metrics, the default sampling rate."""
    from aws_ws_async import telemetry
    from aws_ws_async.telemetry import metrics, tracing

    tracing.use_tracer_provider(None)
    metrics._metrics = None
    telemetry.configure(post_span_rate=POST_SPAN_RATE)


def with_telemetry(
    scenario: Callable[[], RunLike], span_name: str, rate: float = POST_SPAN_RATE
) -> Any:
    """Run a whole scenario with telemetry on; its span ``span_name`` must have been made."""
    switch = Switch(rate)
    try:
        with switch.on():
            run = scenario()
            run = replace(run, cpu=run.cpu + switch.flush())  # type: ignore[type-var]
        if span_name not in switch.span_names():
            raise RuntimeError(f"telemetry scenario recorded no {span_name} span")
    finally:
        switch.close()
    return run


def alternating(
    block: Callable[[], int], blocks: int, span_name: str, trace_ratio: float | None = None
) -> dict[str, Any]:
    """CPU per message of ``block()`` (returns the messages it sent) with telemetry off and on,
    toggled every block; ``blocks`` blocks in all (half each). ``trace_ratio``: sample that
    fraction of the traces in the SDK (default: every trace recorded, the worst case)."""
    switch = Switch(trace_ratio=trace_ratio)
    cpu = {"off": 0.0, "on": 0.0}
    messages = {"off": 0, "on": 0}
    per_block: dict[str, list[float]] = {"off": [], "on": []}
    try:
        block()  # warm-up, not counted
        for i in range(blocks):
            mode = "on" if i % 4 in (1, 2) else "off"
            context = switch.on() if mode == "on" else contextlib.nullcontext()
            with context:
                cpu0 = time.process_time()
                sent = block()
                used = time.process_time() - cpu0
            cpu[mode] += used
            messages[mode] += sent
            per_block[mode].append(used / sent * 1e6)
        cpu["on"] += switch.flush()  # the exporter's work, all of it on the "on" side
        if trace_ratio is None and span_name not in switch.span_names():
            raise RuntimeError(f"alternating run recorded no {span_name} span")
    finally:
        switch.close()
        off()
    off_us = cpu["off"] / messages["off"] * 1e6
    on_us = cpu["on"] / messages["on"] * 1e6
    return {
        "trace_ratio": trace_ratio,
        "blocks": blocks,
        "messages": messages,
        "cpu_us_per_msg_off": round(off_us, 1),
        "cpu_us_per_msg_on": round(on_us, 1),
        "ratio": round(on_us / off_us, 3),
        "per_block_us": {k: [round(v, 1) for v in vs] for k, vs in per_block.items()},
    }


def hook_costs(repeats: int = 15, calls: int = 2000) -> dict[str, float]:
    """CPU of the telemetry hooks themselves, in us: the best of ``repeats`` loops of
    ``calls`` (load only ever adds time, so the minimum is the cost). A single send's hooks
    (post observer, one attempt, ``delivery_finished``) off and on, one attempt inside a
    traced broadcast off and on (histogram + 1 % sampled span), a bare SDK span, and the single
    send with the SDK sampling 10 % of traces."""
    from aws_ws_async.delivery import DeliveryReport
    from aws_ws_async.telemetry import hooks, posts

    switch = Switch()
    report = DeliveryReport(delivered_count=1, delivered=["x"], concurrency=1, duration=0.001)
    tracer = switch.provider.get_tracer("bench")

    def single() -> None:
        observer = posts.post_observer("post")
        if observer is not None:
            observer.attempt(0.001, "delivered", 200, 1)
        hooks.delivery_finished(report, "session_send", started=time.perf_counter(), gateways=1)

    def best(fn: Callable[[], object]) -> float:
        runs = []
        for _ in range(repeats):
            cpu0 = time.process_time()
            for _ in range(calls):
                fn()
            runs.append((time.process_time() - cpu0) / calls * 1e6)
        return round(min(runs), 2)

    costs: dict[str, float] = {}
    try:
        off()
        costs["single_send_off_us"] = best(single)
        attempt = posts.post_observer("post")
        costs["attempt_off_us"] = best(lambda: attempt and attempt.attempt(0.001, "ok", 200, 1))
        with switch.on():
            costs["single_send_on_us"] = best(single)
            costs["bare_sdk_span_us"] = best(lambda: tracer.start_span("x").end())
            with tracer.start_as_current_span("broadcast"):
                traced = posts.post_observer("post")
                assert traced is not None
                costs["attempt_on_us"] = best(lambda: traced.attempt(0.001, "ok", 200, 1))
        sampled = Switch(trace_ratio=0.1)  # the SDK keeps one trace in ten
        try:
            with sampled.on():
                costs["single_send_sampled_10pct_us"] = best(single)
        finally:
            sampled.close()
    finally:
        switch.close()
        off()
    return costs
