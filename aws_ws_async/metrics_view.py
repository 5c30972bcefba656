"""The Prometheus scrape view a project mounts (``path("metrics", metrics_view)``).

The connected-sessions gauge is refreshed here, at scrape time, by one grouped COUNT that is
cached for ``CONNECTED_TTL_SECONDS``: scrapes from several Prometheus servers cost one query,
and no request of the WebSocket views ever pays for it. The view is a plain sync view (one
thread hop per scrape under ASGI, nothing per WebSocket request). It exposes counts only, but
mount it where only your scrapers reach it (an internal host, or behind your own auth).
"""

from __future__ import annotations

import threading
import time

from django.db.models import Count
from django.http import HttpRequest, HttpResponse

from aws_ws_async.models import WebSocketSession
from aws_ws_async.telemetry.metrics import Metrics, get_metrics

#: How long one COUNT of the connected sessions is reused.
CONNECTED_TTL_SECONDS = 15.0

_lock = threading.Lock()
_refreshed: dict[int, float] = {}


def connected_by_gateway() -> dict[str, int]:
    """Connected sessions per gateway name (``-`` for sessions without a gateway)."""
    rows = (
        WebSocketSession.objects.filter(connected=True)
        .order_by()
        .values_list("api_gateway__api_name")
        .annotate(n=Count("id"))
    )
    counts: dict[str, int] = {}
    for name, n in rows:
        counts[name or "-"] = counts.get(name or "-", 0) + n
    return counts


def refresh_connected(metrics: Metrics, *, now: float | None = None) -> bool:
    """Set the gauge from a fresh COUNT unless the last one is recent; True if it queried."""
    now = time.monotonic() if now is None else now
    with _lock:
        last = _refreshed.get(id(metrics))
        if last is not None and now - last < CONNECTED_TTL_SECONDS:
            return False
        _refreshed[id(metrics)] = now
    counts = connected_by_gateway()
    metrics.connected.clear()  # a gateway with no connection left drops to no series
    for gateway, n in counts.items():
        metrics.connected.labels(gateway).set(n)
    return True


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of the package's metrics (503 without ``prometheus_client``)."""
    metrics = get_metrics()
    if metrics is None:
        return HttpResponse(
            "prometheus_client is not installed (pip install aws-ws-async[prometheus])\n",
            status=503,
            content_type="text/plain",
        )
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    refresh_connected(metrics)
    return HttpResponse(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)
