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
    # At most one new client: an earlier test may already have left one for this endpoint on
    # the portal loop (the endpoint is shared by the session), which is reuse too.
    after_first = aws.client_stats().created
    assert after_first - before <= 1
    second = WebSocketSession.objects.for_channel("room").send_message({"n": 2})
    session = WebSocketSession.objects.get(connection_id=ids[1])
    third = session.send_message({"n": 3})
    fourth = session.send_message({"n": 4})

    assert aws.client_stats().created == after_first  # reused by every later call
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
    # progress after each page; pages are per gateway (A: 3+1, B: 3+1, C: 1)
    assert len(seen) == 5
    assert seen == sorted(seen)
    assert seen[-1] == 9
    assert {threaded_fault_endpoint.prefix_of[c] for c in first} == {"/apiaaaaaa1"}
    assert {threaded_fault_endpoint.prefix_of[c] for c in second} == {"/apibbbbbb2"}


def test_sync_twins_from_many_worker_threads_at_once(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    """Eight threads sending at the same time all go through the one portal and all finish."""
    import threading

    gateway = make_gateway()
    ids = make_sessions(gateway, 8)
    results: dict[str, Any] = {}

    def worker(cid: str) -> None:
        try:
            session = WebSocketSession.objects.get(connection_id=cid)
            results[cid] = session.send_message(f"from {cid}", timeout=20).delivered
        except BaseException as error:  # reported below, never swallowed
            results[cid] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(cid,)) for cid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    assert results == {cid: [cid] for cid in ids}
    assert all(threaded_fault_endpoint.received[cid] == [f"from {cid}".encode()] for cid in ids)


def test_sync_twin_in_a_forked_child(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    """A forked child (a prefork worker) gets its own portal: the parent's thread is not there."""
    import os
    import time
    import warnings

    gateway = make_gateway()
    [parent_id, child_id] = make_sessions(gateway, 2)
    # The parent has a running portal (and cached clients on it) before the fork.
    assert WebSocketSession.objects.filter(connection_id=parent_id).send_message("p").delivered
    connections.close_all()  # the child must not share the parent's database sockets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            report = WebSocketSession.objects.filter(connection_id=child_id).send_message(
                "from the child"
            )
            code = 0 if report.delivered == [child_id] else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.02)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    assert os.waitstatus_to_exitcode(status) == 0
    assert threaded_fault_endpoint.received[child_id] == [b"from the child"]


def test_an_interrupted_sync_caller_cancels_the_portal_work() -> None:
    """A caller that stops waiting (an exception raised in its thread) cancels what it started."""
    import os
    import signal
    import threading
    import time

    started, cancelled = threading.Event(), threading.Event()

    async def long_work() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    class Interrupted(Exception):
        pass

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, handler)
    timer = threading.Timer(0.2, lambda: started.wait(5) and os.kill(os.getpid(), signal.SIGUSR1))
    timer.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(Interrupted):
            sync.run(long_work)
        assert time.monotonic() - t0 < 10
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
    assert cancelled.wait(5), "the portal kept running work nobody waits for"


def test_sync_run_on_the_portal_thread_is_refused() -> None:
    async def nested() -> None:
        sync.run(partial(asyncio.sleep, 0), refuse_on_loop=False)

    with pytest.raises(SyncCallOnEventLoop, match="portal thread"):
        sync.run(nested, timeout=10)


@pytest.mark.parametrize("fast_signing", [True, False], ids=["fast", "standard"])
def test_sync_send_to_a_trickling_peer_ends_as_timeout(
    settings: Any, threaded_fault_endpoint: FaultEndpoint, fast_signing: bool
) -> None:
    """The sync twins run the same engine on the portal: the same total attempt deadline."""
    import time

    from tests.fixtures_delivery import point_settings_at

    point_settings_at(
        settings,
        threaded_fault_endpoint.url,
        attempt_timeout_seconds=0.4,
        max_transient_retries=0,
        fast_signing=fast_signing,
    )
    [slow, ok] = make_sessions(make_gateway(), 2)
    threaded_fault_endpoint.plan.trickle_ids = {slow}
    started = time.monotonic()
    report = WebSocketSession.objects.all().send_message("hi", timeout=20)
    session_report = WebSocketSession.objects.get(connection_id=slow).send_message(
        "again", timeout=20
    )
    assert time.monotonic() - started < 10
    assert report.delivered == [ok]
    assert [(f.connection_id, f.reason) for f in report.failed] == [(slow, "timeout")]
    assert [(f.connection_id, f.reason) for f in session_report.failed] == [(slow, "timeout")]


def test_sync_twins_with_the_in_memory_transport(settings: Any) -> None:
    """docs/transports.md's user test: sync twins, the transport setting, scripted answers."""
    from aws_ws_async.testing import network
    from tests.fixtures_delivery import point_settings_at

    point_settings_at(
        settings,
        "https://ws.example.com/{stage}",
        transport="aws_ws_async.testing.InMemoryTransport",
    )
    network.reset()
    [ok, closed] = make_sessions(make_gateway(), 2)
    network.script(closed, "gone")
    network.script(ok, "throttle", times=2)

    report = WebSocketSession.objects.for_channel("room").send_message({"order": 7})

    assert network.posts_to(ok) == [b'{"order":7}']
    assert report.throttled == 2
    assert not WebSocketSession.objects.get(connection_id=closed).connected
    assert WebSocketSession.objects.get(connection_id=ok).disconnect().delivered == [ok]
    assert network.deleted() == [ok]
    assert {c.endpoint_url for c in network.calls} == {"https://ws.example.com/prod"}


def test_a_timed_out_portal_call_has_unwound_when_run_raises() -> None:
    """After ``sync.run(..., timeout=)`` raises, the cancelled work has finished unwinding
    (its cleanup ran): nothing it does can happen after the caller moved on."""
    events: list[str] = []

    async def work() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            await asyncio.sleep(0.3)  # e.g. an in-flight post finishing its cancellation
            events.append("unwound")

    with pytest.raises(TimeoutError):
        sync.run(work, timeout=0.1)
    assert events == ["unwound"]
