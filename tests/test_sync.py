"""The sync shims and the portal loop: plain sync code, executor threads, and refusal on a loop."""

from __future__ import annotations

import asyncio
import io
from functools import partial
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.core.management import CommandError, call_command
from django.db import connections, transaction

from aws_ws_async import aws, sync
from aws_ws_async.models import WebSocketSession
from aws_ws_async.sync import SyncCallOnEventLoop
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway, make_sessions

pytestmark = pytest.mark.django_db(transaction=True)


def test_repeated_sync_calls_reuse_one_client(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    gateway = make_gateway()
    ids = make_sessions(gateway, 30)
    threaded_fault_endpoint.plan.gone = {ids[0]}
    before = aws.client_stats().created

    first = WebSocketSession.objects.for_channel("room").send_message({"n": 1}, db_chunk_size=7)
    second = WebSocketSession.objects.for_channel("room").send_message({"n": 2})
    session = WebSocketSession.objects.get(connection_id=ids[1])
    third = session.send_message({"n": 3})
    fourth = session.send_message({"n": 4})

    assert aws.client_stats().created - before == 1  # one client, reused by every call
    assert sorted(first.delivered) == ids[1:]
    assert first.gone == [ids[0]]
    assert sorted(second.delivered) == ids[1:]  # the gone row is no longer a recipient
    assert second.gone == []
    assert third.delivered == fourth.delivered == [ids[1]]
    assert threaded_fault_endpoint.received[ids[1]] == [
        b'{"n":1}',
        b'{"n":2}',
        b'{"n":3}',
        b'{"n":4}',
    ]
    gone_row = WebSocketSession.objects.get(connection_id=ids[0])
    assert (gone_row.connected, gone_row.disconnect_reason) == (False, "gone")


def test_sync_shim_inside_a_transaction_sees_uncommitted_rows(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    gateway = make_gateway()
    threaded_fault_endpoint.plan.gone = {"c00001="}
    with transaction.atomic():
        ids = make_sessions(gateway, 3)
        report = WebSocketSession.objects.all().send_message("inside")
        assert sorted(report.delivered) == [ids[0], ids[2]]
        assert report.gone == [ids[1]]
        assert not WebSocketSession.objects.get(connection_id=ids[1]).connected


def test_sync_disconnect(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    gateway = make_gateway()
    ids = make_sessions(gateway, 4)
    report = WebSocketSession.objects.filter(connection_id__in=ids[:3]).disconnect()
    assert sorted(report.delivered) == ids[:3]
    assert sorted(threaded_fault_endpoint.deleted) == ids[:3]
    session = WebSocketSession.objects.get(connection_id=ids[3])
    assert session.disconnect().delivered == [ids[3]]
    assert not WebSocketSession.objects.filter(connected=True).exists()


async def test_sync_shim_from_an_executor_thread(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    gateway = await sync_to_async(make_gateway)()
    ids = await sync_to_async(make_sessions)(gateway, 5)

    def in_thread() -> Any:
        try:
            return WebSocketSession.objects.for_channel("room").send_message("from a thread")
        finally:
            connections.close_all()

    report = await asyncio.get_running_loop().run_in_executor(None, in_thread)
    assert sorted(report.delivered) == ids
    assert all(fault_endpoint.received[cid] == [b"from a thread"] for cid in ids)
    await sync_to_async(connections.close_all)()


async def test_sync_shims_refuse_to_run_on_the_event_loop(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    gateway = await sync_to_async(make_gateway)()
    [cid] = await sync_to_async(make_sessions)(gateway, 1)
    session = await WebSocketSession.objects.aget(connection_id=cid)
    with pytest.raises(SyncCallOnEventLoop, match="await"):
        WebSocketSession.objects.all().send_message("no")
    with pytest.raises(SyncCallOnEventLoop):
        session.send_message("no")
    with pytest.raises(SyncCallOnEventLoop):
        session.disconnect()
    with pytest.raises(SyncCallOnEventLoop):
        sync.run(partial(asyncio.sleep, 0))
    assert fault_endpoint.requests == 0
    await sync_to_async(connections.close_all)()


def test_portal_propagates_errors_and_timeouts() -> None:
    async def boom() -> None:
        raise ValueError("inside the portal")

    with pytest.raises(ValueError, match="inside the portal"):
        sync.run(boom)
    with pytest.raises(TimeoutError):
        sync.run(partial(asyncio.sleep, 5), timeout=0.05)
    assert sync.run(partial(asyncio.sleep, 0, result=42)) == 42
    assert sync.portal().thread is not None
    assert sync.portal().thread is not __import__("threading").current_thread()


def test_logout_closes_the_users_connections(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    users = get_user_model()._default_manager
    alice = users.create_user(email="alice@example.com", password="pw-123456")
    bob = users.create_user(email="bob@example.com", password="pw-123456")
    gateway = make_gateway()
    alice_ids = make_sessions(gateway, 2, prefix="al", user=alice)
    bob_ids = make_sessions(gateway, 1, prefix="bo", user=bob)

    user_logged_out.send(sender=type(alice), request=None, user=alice)

    # The receiver does not wait for the DELETEs (they run on the portal): wait here.
    deadline = __import__("time").monotonic() + 10
    while len(threaded_fault_endpoint.deleted) < 2 and __import__("time").monotonic() < deadline:
        __import__("time").sleep(0.01)
    assert sorted(threaded_fault_endpoint.deleted) == alice_ids
    rows = dict(WebSocketSession.objects.values_list("connection_id", "disconnect_reason"))
    assert rows == {**dict.fromkeys(alice_ids, "logout"), bob_ids[0]: ""}


def test_management_command(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    users = get_user_model()._default_manager
    alice = users.create_user(email="alice@example.com", password="pw-123456")
    gateway = make_gateway()
    room = make_sessions(gateway, 4)
    mine = make_sessions(gateway, 2, prefix="al", channel="other", user=alice)

    out = io.StringIO()
    call_command("sendWebSocketMessage", "--channel", "room", '{"a": 1}', stdout=out)
    assert "Sending to 4 connected session(s)" in out.getvalue()
    assert "  4/4: 4 delivered, 0 gone, 0 failed" in out.getvalue()  # progress per chunk
    assert "4 delivered, 0 gone, 0 failed" in out.getvalue()
    assert all(threaded_fault_endpoint.received[cid] == [b'{"a":1}'] for cid in room)

    call_command("sendWebSocketMessage", "--user", "alice@example.com", "--text", "hi", stdout=out)
    call_command("sendWebSocketMessage", "--user", str(alice.pk), "--text", "again", stdout=out)
    assert all(threaded_fault_endpoint.received[cid] == [b"hi", b"again"] for cid in mine)

    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("sendWebSocketMessage", "--all", "{nope", stdout=out)
    with pytest.raises(CommandError, match="no user"):
        call_command("sendWebSocketMessage", "--user", "nobody@example.com", "{}", stdout=out)
    with pytest.raises(CommandError, match="one of the arguments --channel --user --all"):
        call_command("sendWebSocketMessage", "{}", stdout=out)
    with pytest.raises(CommandError, match="131072"):
        call_command("sendWebSocketMessage", "--all", "--text", "x" * 131073, stdout=out)


def test_sync_broadcast_across_gateways_reports_unreachable_rows(
    settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    from aws_ws_async.models import ApiGateway
    from tests.fixtures_delivery import point_settings_at

    point_settings_at(settings, threaded_fault_endpoint.url + "/{api_id}")
    first = make_sessions(make_gateway("A", "apiaaaaaa1"), 4, prefix="a")
    second = make_sessions(make_gateway("B", "apibbbbbb2"), 4, prefix="b")
    unprovisioned = make_sessions(ApiGateway.objects.create(api_name="C"), 1, prefix="u")
    seen: list[int] = []
    report = WebSocketSession.objects.all().send_message(
        "hi", db_chunk_size=3, progress=lambda r: seen.append(r.total)
    )
    assert sorted(report.delivered) == sorted(first + second)
    assert [(f.connection_id, f.reason) for f in report.failed] == [
        (unprovisioned[0], "gateway_not_provisioned")
    ]
    assert seen == [3, 6, 9]
    assert {threaded_fault_endpoint.prefix_of[c] for c in first} == {"/apiaaaaaa1"}
    assert {threaded_fault_endpoint.prefix_of[c] for c in second} == {"/apibbbbbb2"}
