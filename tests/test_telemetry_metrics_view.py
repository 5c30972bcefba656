"""The scrape view (cached connected gauge per gateway) and the package without the extras.

"Without the extras" is made real by hiding the modules (``sys.modules[name] = None`` makes
``import name`` raise ImportError, exactly as when the package is not installed); this module
also runs with the extras really unimportable (``tests/test_telemetry_without_extras.py``), so
only the scrape test asks for ``prometheus_client``.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import RequestFactory

from aws_ws_async import metrics_view as view_module
from aws_ws_async import telemetry
from aws_ws_async.models import WebSocketSession
from aws_ws_async.telemetry import metrics as metrics_module
from aws_ws_async.telemetry import recent, tracing
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway, make_sessions


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    prometheus_client = pytest.importorskip("prometheus_client")
    monkeypatch.setattr(metrics_module, "_metrics", metrics_module._UNSET)
    monkeypatch.setattr(view_module, "_refreshed", {})
    registry = prometheus_client.CollectorRegistry()
    metrics_module.use_registry(registry)
    return registry


@pytest.mark.django_db
def test_scrape_has_connected_sessions_per_gateway_cached(
    registry: Any, django_assert_num_queries: Any
) -> None:
    lobby = make_gateway("Lobby API", "lob0000001")
    chat = make_gateway("Chat API", "cht0000001")
    make_sessions(lobby, 4, prefix="l")
    make_sessions(chat, 2, prefix="c")
    make_sessions(chat, 3, prefix="x", connected=False)
    request = RequestFactory().get("/metrics")
    with django_assert_num_queries(1):
        body = view_module.metrics_view(request).content.decode()
    assert 'aws_ws_async_connected_sessions{gateway="Lobby API"} 4.0' in body
    assert 'aws_ws_async_connected_sessions{gateway="Chat API"} 2.0' in body
    WebSocketSession.objects.filter(connection_id__startswith="l").update(connected=False)
    with django_assert_num_queries(0):  # within the TTL: the cached count
        cached = view_module.metrics_view(request).content.decode()
    assert 'gateway="Lobby API"} 4.0' in cached
    metrics = metrics_module.get_metrics()
    assert metrics is not None
    later = view_module.CONNECTED_TTL_SECONDS + 1e6
    assert view_module.refresh_connected(metrics, now=later)
    fresh = view_module.metrics_view(request).content.decode()
    assert 'gateway="Lobby API"' not in fresh  # no connection left: the series is gone
    assert 'gateway="Chat API"} 2.0' in fresh


@pytest.fixture
def no_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("opentelemetry", "opentelemetry.trace", "prometheus_client"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(tracing, "_trace", tracing._UNSET)
    monkeypatch.setattr(tracing, "_cached", None)
    monkeypatch.setattr(metrics_module, "_metrics", metrics_module._UNSET)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_async_db_connections")
async def test_without_the_extras_broadcasts_work_and_the_view_says_why(
    no_extras: None, fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    recent.clear()
    gateway = await sync_to_async(make_gateway)()
    ids = await sync_to_async(make_sessions)(gateway, 5)
    fault_endpoint.plan.gone = {ids[0]}
    report = await WebSocketSession.objects.all().asend_message("hi")
    assert (report.delivered_count, len(report.gone)) == (4, 1)
    assert tracing._api() is None
    assert metrics_module.get_metrics() is None
    assert telemetry.post_observer("post") is None  # the engine's per-attempt hook: off
    [kept] = recent.recent_reports()  # the dashboard still has it
    assert kept["ws_gone"] == 1
    response = view_module.metrics_view(RequestFactory().get("/metrics"))
    assert response.status_code == 503
    assert b"aws-ws-async[prometheus]" in response.content
