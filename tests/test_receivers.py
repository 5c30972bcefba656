"""Receivers: wired in ``AppConfig.ready()``, and a logout never waits for AWS."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import pre_delete

from aws_ws_async import receivers, signals
from aws_ws_async.models import ApiGateway, WebSocketSession
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway, make_sessions

pytestmark = pytest.mark.django_db(transaction=True)


def test_signals_module_defines_signals_only() -> None:
    from django.dispatch import Signal

    public = {k: v for k, v in vars(signals).items() if not k.startswith("_")}
    assert {k for k, v in public.items() if isinstance(v, Signal)} == {
        "broadcast_finished",
        "broadcast_completed",
    }
    assert not [v for v in public.values() if callable(v) and not isinstance(v, type | Signal)]


def test_ready_connected_each_receiver_once() -> None:
    from django.apps import apps

    apps.get_app_config("aws_ws_async").ready()  # a second ready() must not double-connect
    for signal, receiver, sender, _uid in receivers.RECEIVERS:
        if isinstance(sender, str):  # a lazy "app_label.Model" sender
            sender = apps.get_model(sender)
        sync_receivers, async_receivers = signal._live_receivers(sender)
        live = list(sync_receivers) + list(async_receivers)
        assert sum(1 for r in live if r is receiver) == 1, receiver
    assert pre_delete.has_listeners(ApiGateway)


def test_logout_does_not_wait_for_a_slow_aws(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    threaded_fault_endpoint.plan.latency = 2.0
    users = get_user_model()._default_manager
    alice = users.create_user(email="alice@example.com", password="pw-123456")
    bob = users.create_user(email="bob@example.com", password="pw-123456")
    gateway = make_gateway()
    alice_ids = make_sessions(gateway, 3, prefix="al", user=alice)
    bob_ids = make_sessions(gateway, 1, prefix="bo", user=bob)

    started = time.monotonic()
    user_logged_out.send(sender=type(alice), request=None, user=alice)
    assert time.monotonic() - started < 0.5  # the old receiver waited up to 2 s

    marked = dict(WebSocketSession.objects.values_list("connection_id", "disconnect_reason"))
    assert marked == {**dict.fromkeys(alice_ids, "logout"), bob_ids[0]: ""}
    deadline = time.monotonic() + 15
    while len(threaded_fault_endpoint.deleted) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(threaded_fault_endpoint.deleted) == alice_ids


def test_close_user_connections_returns_the_report_future(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    users = get_user_model()._default_manager
    alice = users.create_user(email="alice@example.com", password="pw-123456")
    ids = make_sessions(make_gateway(), 2, user=alice)
    report = receivers.close_user_connections(alice, "user_invalid").result(timeout=10)
    assert sorted(report.delivered) == ids
    assert set(WebSocketSession.objects.values_list("disconnect_reason", flat=True)) == {
        "user_invalid"
    }
    with pytest.raises(ValueError, match="at most 16"):
        receivers.close_user_connections(alice, "a-reason-too-long-for-the-column")
