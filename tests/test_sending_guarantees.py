"""The guarantees of sending: per-gateway endpoints, once per session, validation, clean stops.

Every test talks to real HTTP endpoints (``FaultEndpoint``) and a real database; nothing of
ours is mocked.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import DatabaseError
from django.db.models import F

from aws_ws_async.delivery import DeliveryReport, Failure
from aws_ws_async.delivery.report import FailureReason
from aws_ws_async.exceptions import (
    AwsWsAsyncError,
    BroadcastAborted,
    BroadcastTimeout,
    DeliveryFailed,
    PayloadTooLarge,
)
from aws_ws_async.models import ApiGateway, WebSocketSession
from aws_ws_async.testing import FaultEndpoint, FaultPlan
from tests.fixtures_delivery import make_gateway, make_sessions, point_settings_at

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_async_db_connections"),
]


async def states() -> dict[str, tuple[bool, str]]:
    return {
        cid: (connected, reason)
        async for cid, connected, reason in WebSocketSession.objects.values_list(
            "connection_id", "connected", "disconnect_reason"
        )
    }


def accounted(report: DeliveryReport) -> set[str]:
    return {*report.delivered, *report.gone, *(f.connection_id for f in report.failed)}


async def settle(endpoint: FaultEndpoint, report: DeliveryReport, seconds: float = 0.3) -> None:
    """After ``seconds``, every connection the endpoint heard of is in ``report``.

    A post cut off in flight may still reach the endpoint a moment later (it is reported as
    ``cancelled``); a post started after the call raised would name a connection the report
    does not know.
    """
    await asyncio.sleep(seconds)
    assert set(endpoint.calls) <= accounted(report), "a post started after the call raised"


# --- 10.2: each gateway may name its own @connections endpoint -----------------------------


async def test_one_queryset_two_gateways_two_endpoints(settings: Any) -> None:
    async with FaultEndpoint(FaultPlan()) as first, FaultEndpoint(FaultPlan()) as second:
        point_settings_at(settings, "http://127.0.0.1:9/{api_id}/{stage}")  # nothing listens
        g1 = await sync_to_async(make_gateway)(
            "A", "apiaaaaaa1", management_endpoint_url=first.url + "/{api_id}/{stage}"
        )
        g2 = await sync_to_async(make_gateway)(
            "B", "apibbbbbb2", stage_name="two", management_endpoint_url=second.url
        )
        ids1 = await sync_to_async(make_sessions)(g1, 6, prefix="a")
        ids2 = await sync_to_async(make_sessions)(g2, 4, prefix="b")

        report = await WebSocketSession.objects.for_channel("room").asend_message("hi")

        assert sorted(report.delivered) == sorted(ids1 + ids2)
        assert sorted(first.received) == ids1
        assert sorted(second.received) == ids2
        assert set(first.prefix_of.values()) == {"/apiaaaaaa1/prod"}
        assert set(second.prefix_of.values()) == {""}
        assert g1.management_endpoint == first.url + "/apiaaaaaa1/prod"
        assert g2.management_endpoint == second.url


def test_management_endpoint_falls_back_to_the_setting(settings: Any) -> None:
    point_settings_at(settings, "https://example.test/{region}/{api_id}/{stage}")
    gateway = ApiGateway(api_id="abcdef1234", stage_name="live")
    assert gateway.management_endpoint == "https://example.test/us-east-1/abcdef1234/live"
    assert ApiGateway(api_id="", stage_name="live").management_endpoint is None
    own = ApiGateway(api_id="", management_endpoint_url="http://emulator.test/ws/")
    assert own.management_endpoint == "http://emulator.test/ws"


# --- 9.4: a session is posted once, however the queryset is built -------------------------


async def test_multi_valued_relation_posts_each_session_once(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    def setup() -> tuple[list[str], list[Group]]:
        users = get_user_model()._default_manager
        alice = users.create_user(email="alice@example.com", password="pw-123456")
        g1, g2 = Group.objects.create(name="g1"), Group.objects.create(name="g2")
        alice.groups.add(g1, g2)
        return make_sessions(make_gateway(), 7, user=alice), [g1, g2]

    ids, groups = await sync_to_async(setup)()
    selected = WebSocketSession.objects.filter(user__groups__in=groups)
    assert await selected.acount() == 14  # the join repeats every row

    report = await selected.asend_message("once", db_chunk_size=3)
    assert report.total == report.delivered_count == 7
    assert sorted(report.delivered) == ids
    assert {cid: fault_endpoint.calls[cid] for cid in ids} == dict.fromkeys(ids, 1)

    closed = await selected.adisconnect(db_chunk_size=3)
    assert closed.total == 7
    assert sorted(fault_endpoint.deleted) == ids


def test_multi_valued_relation_sync_twin_posts_once(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    users = get_user_model()._default_manager
    alice = users.create_user(email="alice@example.com", password="pw-123456")
    g1, g2 = Group.objects.create(name="g1"), Group.objects.create(name="g2")
    alice.groups.add(g1, g2)
    ids = make_sessions(make_gateway(), 5, user=alice)

    report = WebSocketSession.objects.filter(user__groups__in=[g1, g2]).send_message(
        "once", db_chunk_size=2
    )
    assert report.total == 5
    assert {cid: threaded_fault_endpoint.calls[cid] for cid in ids} == dict.fromkeys(ids, 1)


# --- 9.5: every argument is checked before anything leaves --------------------------------


async def test_close_reason_longer_than_the_column_is_refused_before_any_delete(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    gateway = await sync_to_async(make_gateway)()
    ids = await sync_to_async(make_sessions)(gateway, 3)
    too_long = "x" * 17  # disconnect_reason is varchar(16)
    with pytest.raises(ValueError, match="at most 16"):
        await WebSocketSession.objects.all().adisconnect(too_long)
    session = await WebSocketSession.objects.aget(connection_id=ids[0])
    with pytest.raises(ValueError, match="at most 16"):
        await session.adisconnect(too_long)
    with pytest.raises(ValueError, match="at most 16"):
        await sync_to_async(WebSocketSession.objects.all().disconnect)(too_long)
    assert fault_endpoint.requests == 0
    assert set((await states()).values()) == {(True, "")}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"concurrency": 0}, ValueError),
        ({"concurrency": True}, TypeError),
        ({"concurrency": "5"}, TypeError),
        ({"db_chunk_size": 0}, ValueError),
        ({"db_chunk_size": 2.5}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"timeout": float("inf")}, ValueError),
        ({"timeout": "5"}, TypeError),
        ({"progress": "print"}, TypeError),
        ({"collect_delivered": "yes"}, TypeError),
    ],
)
async def test_bad_bulk_arguments_fail_before_sending(
    fault_settings: Any, fault_endpoint: FaultEndpoint, kwargs: dict[str, Any], error: type
) -> None:
    gateway = await sync_to_async(make_gateway)()
    await sync_to_async(make_sessions)(gateway, 2)
    with pytest.raises(error):
        await WebSocketSession.objects.all().asend_message("x", **kwargs)
    with pytest.raises(error):
        await sync_to_async(WebSocketSession.objects.all().send_message)("x", **kwargs)
    if "collect_delivered" not in kwargs:
        with pytest.raises(error):
            await WebSocketSession.objects.all().adisconnect(**kwargs)
    assert fault_endpoint.requests == 0


async def test_bad_single_arguments_and_payloads_fail_before_sending(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    gateway = await sync_to_async(make_gateway)()
    [cid] = await sync_to_async(make_sessions)(gateway, 1)
    session = await WebSocketSession.objects.aget(connection_id=cid)
    for kwargs, error in [
        ({"gone_retry_seconds": -1}, ValueError),
        ({"gone_retry_seconds": "3"}, TypeError),
        ({"timeout": 0}, ValueError),
        ({"timeout": None, "gone_retry_seconds": float("nan")}, ValueError),
    ]:
        with pytest.raises(error):
            await session.asend_message("x", **kwargs)
    with pytest.raises(TypeError, match="cannot send set"):
        await session.asend_message({1, 2})
    with pytest.raises(TypeError, match="cannot send"):
        await WebSocketSession.objects.all().asend_message({"when": object()})
    with pytest.raises(PayloadTooLarge):
        await session.asend_message("x" * 131073)
    with pytest.raises(TypeError, match="sliced"):
        await WebSocketSession.objects.all()[:1].asend_message("x")
    assert fault_endpoint.requests == 0


# --- 10.8: reasons are documented constants; the report can raise ---------------------------


async def test_failure_reasons_are_constants_and_raise_for_failures(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    gateway = await sync_to_async(make_gateway)()
    ids = await sync_to_async(make_sessions)(gateway, 3)
    orphan = await sync_to_async(make_sessions)(None, 1, prefix="o")
    fault_endpoint.plan.status_for = {ids[0]: 403}
    fault_endpoint.plan.gone = {ids[1]}
    report = await WebSocketSession.objects.all().asend_message("x")
    reasons = {f.connection_id: f.reason for f in report.failed}
    assert reasons == {ids[0]: FailureReason.FORBIDDEN, orphan[0]: FailureReason.NO_GATEWAY}
    assert all(isinstance(r, FailureReason) for r in reasons.values())
    with pytest.raises(DeliveryFailed, match="2 of 4 recipient") as raised:
        report.raise_for_failures()
    assert raised.value.report is report
    assert isinstance(raised.value, AwsWsAsyncError)
    clean = DeliveryReport(delivered=["a"], gone=["b"], delivered_count=1)
    assert clean.raise_for_failures() is clean
    assert Failure("x", FailureReason.TIMEOUT).reason == "timeout"


# --- 9.8: a failing broadcast stops cleanly ----------------------------------------------------


async def test_a_failing_gateway_part_cancels_the_others_and_keeps_the_marks(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    """Gateway B's rows raise a database error on a later page; gateway A is mid-way then.

    ``connection_id ~ channel_name`` is evaluated per row: an empty channel matches, while
    ``(`` is an invalid pattern, which both SQLite (Django's REGEXP function) and PostgreSQL
    report as a database error when a page holding such a row is read. The last row of B is
    given that channel once the broadcast is under way (its first queries were fine).
    """
    fault_endpoint.plan.latency = 0.05
    g1 = await sync_to_async(make_gateway)("A", "apiaaaaaa1")
    g2 = await sync_to_async(make_gateway)("B", "apibbbbbb2")
    ids_a = await sync_to_async(make_sessions)(g1, 200, channel="", prefix="a")
    await sync_to_async(make_sessions)(g2, 30, channel="", prefix="b")
    [poison] = await sync_to_async(make_sessions)(g2, 1, channel="", prefix="z")
    fault_endpoint.plan.gone = set(ids_a[:10])
    selected = WebSocketSession.objects.filter(connection_id__regex=F("channel_name"))

    started = time.monotonic()
    task = asyncio.ensure_future(selected.asend_message("x", concurrency=4, db_chunk_size=5))
    while fault_endpoint.requests < 12 and not task.done():
        await asyncio.sleep(0.005)
    await WebSocketSession.objects.filter(connection_id=poison).aupdate(channel_name="(")
    with pytest.raises(BroadcastAborted) as raised:
        await task
    assert time.monotonic() - started < 10
    await settle(fault_endpoint, raised.value.report)

    error = raised.value
    assert isinstance(error.__cause__, DatabaseError)
    report = error.report
    assert 0 < report.total < 231
    assert report.delivered_count < 200  # gateway A was stopped part-way
    after = await states()
    for cid in report.gone:  # every gone learned before the stop is on disk
        assert after[cid] == (False, "gone")
    assert sum(1 for c, (connected, _) in after.items() if not connected) == len(report.gone)


async def test_broadcast_timeout_stops_posting_and_says_how_far_it_got(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    fault_endpoint.plan.latency = 0.1
    gateway = await sync_to_async(make_gateway)()
    ids = await sync_to_async(make_sessions)(gateway, 200)
    fault_endpoint.plan.gone = set(ids[:3])

    started = time.monotonic()
    with pytest.raises(BroadcastTimeout) as raised:
        await WebSocketSession.objects.all().asend_message("x", concurrency=5, timeout=0.45)
    elapsed = time.monotonic() - started
    await settle(fault_endpoint, raised.value.report)

    assert 0.4 < elapsed < 2.0
    assert isinstance(raised.value, TimeoutError)
    report = raised.value.report
    assert 0 < report.delivered_count < 200
    assert sorted(report.gone) == sorted(ids[:3])
    cancelled = [f for f in report.failed if f.reason == FailureReason.CANCELLED]
    assert 0 < len(cancelled) <= 5  # at most the posts in flight
    assert report.total <= fault_endpoint.requests
    after = await states()
    assert [cid for cid in ids if not after[cid][0]] == ids[:3]


def test_sync_broadcast_timeout(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    threaded_fault_endpoint.plan.latency = 0.1
    ids = make_sessions(make_gateway(), 200)
    threaded_fault_endpoint.plan.gone = set(ids[:3])
    started = time.monotonic()
    with pytest.raises(BroadcastTimeout) as raised:
        WebSocketSession.objects.all().send_message(
            "x", concurrency=5, timeout=0.45, db_chunk_size=20
        )
    assert 0.4 < time.monotonic() - started < 2.0
    report = raised.value.report
    time.sleep(0.3)
    assert set(threaded_fault_endpoint.calls) <= accounted(report)
    assert 0 < report.delivered_count < 200
    assert sorted(report.gone) == sorted(ids[:3])
    gone_rows = WebSocketSession.objects.filter(connected=False).values_list(
        "connection_id", flat=True
    )
    assert sorted(gone_rows) == sorted(ids[:3])


async def test_single_send_timeout(fault_settings: Any, fault_endpoint: FaultEndpoint) -> None:
    fault_endpoint.plan.latency = 1.0
    [cid] = await sync_to_async(make_sessions)(await sync_to_async(make_gateway)(), 1)
    session = await WebSocketSession.objects.aget(connection_id=cid)
    started = time.monotonic()
    with pytest.raises(BroadcastTimeout) as raised:
        await session.asend_message("x", timeout=0.2)
    assert time.monotonic() - started < 0.9
    assert [f.reason for f in raised.value.report.failed] == [FailureReason.CANCELLED]


# --- progress on both twins --------------------------------------------------------------------


async def test_async_progress_is_called_per_chunk(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    await sync_to_async(make_sessions)(await sync_to_async(make_gateway)(), 10)
    seen: list[int] = []
    report = await WebSocketSession.objects.all().asend_message(
        "x", db_chunk_size=3, progress=lambda r: seen.append(r.total)
    )
    assert report.total == 10
    assert len(seen) == 4  # pages of 3, 3, 3, 1
    assert seen == sorted(seen)


def test_sync_broadcast_stops_cleanly_on_a_database_error(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    """The sync twin reads pages in the caller's thread: a failing page stops the pages in
    flight on the portal, keeps their marks and raises with the partial report."""
    threaded_fault_endpoint.plan.latency = 0.02
    ids = make_sessions(make_gateway(), 60, channel="")
    threaded_fault_endpoint.plan.gone = {ids[0]}
    selected = WebSocketSession.objects.filter(connection_id__regex=F("channel_name"))

    def poison(report: DeliveryReport) -> None:  # after the first page: break a later row
        WebSocketSession.objects.filter(connection_id=ids[-1]).update(channel_name="(")

    with pytest.raises(BroadcastAborted) as raised:
        selected.send_message("x", db_chunk_size=10, concurrency=5, progress=poison)
    report = raised.value.report
    time.sleep(0.3)
    assert set(threaded_fault_endpoint.calls) <= accounted(report)
    assert isinstance(raised.value.__cause__, DatabaseError)
    assert 10 <= report.total < 60
    assert ids[0] in report.gone
    marked = WebSocketSession.objects.filter(connected=False).values_list(
        "connection_id", flat=True
    )
    assert list(marked) == [ids[0]]


async def test_gone_marks_are_written_on_time_during_a_long_broadcast(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    fault_endpoint.plan.latency = 0.05
    ids = await sync_to_async(make_sessions)(await sync_to_async(make_gateway)(), 120)
    fault_endpoint.plan.gone = set(ids[:3])  # far fewer than one batch of 500
    task = asyncio.ensure_future(WebSocketSession.objects.all().asend_message("x", concurrency=2))
    await asyncio.sleep(1.2)  # the broadcast needs about 3 s
    assert not task.done()
    during = await states()
    assert [cid for cid in ids if not during[cid][0]] == ids[:3]
    report = await task
    assert sorted(report.gone) == ids[:3]


def test_sync_broadcast_a_slow_gateway_holds_back_only_itself(settings: Any) -> None:
    """Gateway A answers after 1 s, B at once; their rows interleave by pk. B's pages must not
    wait for A's (a page mixing both gateways did: B finished after A, page by page)."""
    slow, fast = FaultEndpoint(FaultPlan(latency=1.0)), FaultEndpoint(FaultPlan())
    slow.start_in_thread()
    fast.start_in_thread()
    try:
        point_settings_at(settings, "http://127.0.0.1:9")
        g_slow = make_gateway("A", "apiaaaaaa1", management_endpoint_url=slow.url)
        g_fast = make_gateway("B", "apibbbbbb2", management_endpoint_url=fast.url)
        for i in range(40):
            make_sessions(g_slow if i % 8 == 0 else g_fast, 1, prefix=f"r{i:02d}-")
        started = time.monotonic()
        report = WebSocketSession.objects.all().send_message("x", db_chunk_size=4, concurrency=8)
        assert report.delivered_count == 40
        fast_done = max(t for t, _ in fast.in_flight_log) - started
        slow_first = min(t for t, _ in slow.in_flight_log) - started
        assert fast_done < slow_first + 1.0  # every fast post left before A's first answer
        assert len(fast.received) == 35
    finally:
        slow.stop_thread()
        fast.stop_thread()
