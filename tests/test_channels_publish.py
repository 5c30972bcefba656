"""``apublish`` / ``publish``: the envelope, seqs with history on, checks before any write, races.

Posts go to the fault endpoint over real HTTP (``endpoint.received`` holds what each connection
got); the database is real (SQLite or PostgreSQL).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections, transaction

from aws_ws_async.channels import PublishReport, apublish, publish
from aws_ws_async.exceptions import CalledInsideTransaction, PayloadTooLarge
from aws_ws_async.models import (
    ChannelHistory,
    ChannelMessage,
    ChannelSubscription,
    WebSocketSession,
)
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway, make_sessions

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_async_db_connections"),
]


def subscribers(count: int, channel: str = "room", prefix: str = "c") -> list[str]:
    """``count`` connected sessions subscribed to ``channel`` (plus their first channel)."""
    gateway = make_gateway()
    ids = make_sessions(gateway, count, channel="first", prefix=prefix)
    sessions = WebSocketSession.objects.filter(connection_id__in=ids)
    ChannelSubscription.objects.bulk_create(
        ChannelSubscription(session=s, channel_name=channel) for s in sessions
    )
    return ids


def frames(endpoint: FaultEndpoint, cid: str) -> list[dict[str, Any]]:
    return [json.loads(body) for body in endpoint.received[cid]]


def seq_state(channel: str = "room") -> tuple[int, list[int]]:
    history = ChannelHistory.objects.get(channel_name=channel)
    return history.last_seq, list(history.messages.order_by("seq").values_list("seq", flat=True))


async def test_history_off_posts_the_envelope_without_seq_and_writes_nothing(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    ids = await sync_to_async(subscribers)(3)
    other_gateway = await sync_to_async(make_gateway)("Other API", api_id="other00001")
    others = await sync_to_async(make_sessions)(
        other_gateway, 2, channel="room", prefix="o", subscribe=False
    )
    gone_row = await WebSocketSession.objects.aget(connection_id=ids[2])
    await gone_row.amark_disconnected()

    report = await apublish("room", {"text": "héllo"})

    assert isinstance(report, PublishReport)
    assert (report.channel, report.seq) == ("room", None)
    assert sorted(report.delivery.delivered) == ids[:2]
    expected = {"type": "message", "channel": "room", "data": {"text": "héllo"}}
    assert frames(fault_endpoint, ids[0]) == [expected]
    # channel_name "room" without a subscription row is not the audience; nor a closed row
    assert not any(fault_endpoint.received[cid] for cid in [*others, ids[2]])
    assert await ChannelMessage.objects.acount() == 0
    assert await ChannelHistory.objects.acount() == 0


async def test_history_on_numbers_broadcasts_and_keeps_one_row_each(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    ids = await sync_to_async(subscribers)(4)
    await ChannelHistory.objects.acreate(channel_name="room")

    seqs = [(await apublish("room", data)).seq for data in ("a", ["b"], {"c": 3})]

    assert seqs == [1, 2, 3]
    got = frames(fault_endpoint, ids[3])
    assert [f["seq"] for f in got] == [1, 2, 3]
    assert [f["data"] for f in got] == ["a", ["b"], {"c": 3}]
    assert all(f["type"] == "message" and f["channel"] == "room" for f in got)
    kept = [
        bytes(b)
        async for b in ChannelMessage.objects.order_by("seq").values_list("frame", flat=True)
    ]
    # one row per broadcast (not per recipient), holding exactly the bytes posted
    assert kept == fault_endpoint.received[ids[0]]
    assert await sync_to_async(seq_state)() == (3, [1, 2, 3])


async def test_disabled_history_keeps_the_counter_and_writes_nothing(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    ids = await sync_to_async(subscribers)(1)
    await ChannelHistory.objects.acreate(channel_name="room", last_seq=7, enabled=False)
    report = await apublish("room", "x")
    assert report.seq is None
    assert "seq" not in frames(fault_endpoint, ids[0])[0]
    assert await sync_to_async(seq_state)() == (7, [])


async def test_gone_subscribers_are_marked_as_by_any_broadcast(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    ids = await sync_to_async(subscribers)(3)
    fault_endpoint.plan.gone = {ids[1]}
    report = await apublish("room", "x")
    assert report.delivery.gone == [ids[1]]
    row = await WebSocketSession.objects.aget(connection_id=ids[1])
    assert (row.connected, row.disconnect_reason) == (False, "gone")


@pytest.mark.parametrize(
    ("channel", "data", "options", "error"),
    [
        ("bad name!", "x", {}, ValueError),
        (42, "x", {}, TypeError),
        ("room", {"x": object()}, {}, TypeError),
        ("room", b"\xff not json", {}, TypeError),
        ("room", "x", {"concurrency": 0}, ValueError),
        ("room", "x", {"timeout": "5"}, TypeError),
        ("room", "x", {"unknown": 1}, TypeError),
        # the envelope counts: data that fits alone is refused once wrapped
        ("room", "x" * (131072 - 10), {}, PayloadTooLarge),
    ],
)
async def test_bad_calls_raise_before_any_write(
    fault_settings: Any,
    fault_endpoint: FaultEndpoint,
    channel: Any,
    data: Any,
    options: dict[str, Any],
    error: type[Exception],
) -> None:
    await sync_to_async(subscribers)(1)
    await ChannelHistory.objects.acreate(channel_name="room", last_seq=5)
    with pytest.raises(error):
        await apublish(channel, data, **options)
    assert await sync_to_async(seq_state)() == (5, [])
    assert fault_endpoint.requests == 0


def test_frame_over_the_limit_only_with_its_seq_rolls_the_seq_back(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    subscribers(1)
    ChannelHistory.objects.create(channel_name="room", last_seq=99)
    plain = len(b'{"type":"message","channel":"room","data":""}')
    # fits without seq, does not fit with ',"seq":100'
    data = "x" * (131072 - plain - 3)
    with pytest.raises(PayloadTooLarge):
        publish("room", data)
    assert seq_state() == (99, [])
    assert threaded_fault_endpoint.requests == 0
    assert publish("room", "small").seq == 100


def test_sync_publish_and_refusal_inside_atomic(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    ids = subscribers(2)
    # History off: a plain send, allowed inside atomic() as asend_message() is.
    with transaction.atomic():
        assert publish("room", "plain").seq is None
    assert [f.get("seq") for f in frames(threaded_fault_endpoint, ids[1])] == [None]
    threaded_fault_endpoint.received.clear()
    ChannelHistory.objects.create(channel_name="room")
    with transaction.atomic(), pytest.raises(CalledInsideTransaction, match="on_commit"):
        publish("room", "never")
    assert seq_state() == (0, [])

    report = publish("room", {"n": 1}, collect_delivered=False)
    assert report.seq == 1
    assert report.delivery.delivered_count == 2
    assert [f["seq"] for f in frames(threaded_fault_endpoint, ids[1])] == [1]


async def test_async_publish_refused_on_the_sync_api(fault_settings: Any) -> None:
    from aws_ws_async.exceptions import SyncCallOnEventLoop

    with pytest.raises(SyncCallOnEventLoop):
        publish("room", "x")


def test_bytes_are_taken_as_encoded_json(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    ids = subscribers(1)
    publish("room", b'{"pre":"encoded"}')
    assert frames(threaded_fault_endpoint, ids[0])[0]["data"] == {"pre": "encoded"}


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_using_reads_and_writes_only_that_database(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    ChannelHistory.objects.using("other").create(channel_name="room", last_seq=40)
    ChannelHistory.objects.create(channel_name="room", last_seq=1)
    assert publish("room", "x", using="other").seq == 41
    assert ChannelMessage.objects.using("other").count() == 1
    assert seq_state() == (1, [])


def writers_race(writers: int, each: int) -> dict[int, list[int]]:
    """``writers`` threads, each on its own connection, publishing ``each`` times at once."""
    seqs: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            start.wait()
            seqs[n] = [publish("race", {"w": n, "i": i}).seq for i in range(each)]  # type: ignore[misc]
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return seqs


def test_racing_writers_get_distinct_gapless_ordered_seqs(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers on separate connections: PostgreSQL (SQLite serialises)")
    ids = subscribers(2, channel="race")
    ChannelHistory.objects.create(channel_name="race")
    writers, each = 8, 25

    seqs = writers_race(writers, each)

    every = sorted(s for got in seqs.values() for s in got)
    assert every == list(range(1, writers * each + 1))  # distinct, no holes
    assert all(got == sorted(got) for got in seqs.values())  # each writer's in its order
    last_seq, kept = seq_state("race")
    assert (last_seq, kept) == (writers * each, every)
    # each kept frame carries the seq it is stored under, and the writer's data
    for seq, frame in ChannelMessage.objects.values_list("seq", "frame"):
        assert json.loads(bytes(frame))["seq"] == seq
    assert sorted(f["seq"] for f in frames(threaded_fault_endpoint, ids[0])) == every


def test_a_subscriber_joining_mid_race_misses_nothing_after_its_since(
    threaded_fault_settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    """The ordering rule under real concurrency: replay + live cover every seq > since."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers on separate connections: PostgreSQL")
    from aws_ws_async.channels import replay
    from aws_ws_async.channels.history import latest_seq

    subscribers(1, channel="race")
    ChannelHistory.objects.create(channel_name="race")
    [late] = make_sessions(WebSocketSession.objects.get().api_gateway, 1, prefix="late")
    session = WebSocketSession.objects.get(connection_id=late)
    since: list[int] = []

    def join() -> None:
        # come back mid-race: once 20 messages are out (what the client saw before it left)
        while (seen := latest_seq("race") or 0) < 20:
            time.sleep(0.001)
        since.append(seen)
        ChannelSubscription.objects.create(session=session, channel_name="race")  # committed
        replay(session, "race", seen)
        connections.close_all()

    joiner = threading.Thread(target=join)
    joiner.start()
    writers_race(4, 50)
    joiner.join()
    got = {f["seq"] for f in frames(threaded_fault_endpoint, late)}
    assert since[0] >= 20
    assert set(range(since[0] + 1, 201)) <= got  # at least once: never zero times


def test_enqueue_publish_numbers_then_hands_the_frame_to_task_workers(
    small_shards: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from aws_ws_async.channels.publish import enqueue_publish
    from aws_ws_async.models import BroadcastStatus
    from tests.fixtures_scaleout import backend

    ids = subscribers(25)
    ChannelHistory.objects.create(channel_name="room", last_seq=4)
    with pytest.raises(ImproperlyConfigured, match="TASKS"):
        enqueue_publish("room", "no backend")
    assert seq_state() == (4, [])  # refused before anything was written

    small_shards.TASKS = backend("Immediate")
    enqueued = enqueue_publish("room", {"big": True})
    result = enqueued.broadcast.wait_result(timeout=30)
    assert enqueued.seq == 5
    assert (result.status, result.delivered, result.shards_total) == (
        BroadcastStatus.FINISHED,
        25,
        3,
    )
    assert all(
        frames(threaded_fault_endpoint, cid)
        == [{"type": "message", "channel": "room", "seq": 5, "data": {"big": True}}]
        for cid in ids
    )
    assert seq_state() == (5, [5])


async def test_aenqueue_publish(small_shards: Any, threaded_fault_endpoint: FaultEndpoint) -> None:
    from aws_ws_async.channels.publish import aenqueue_publish
    from tests.fixtures_scaleout import backend

    ids = await sync_to_async(subscribers)(3)
    await ChannelHistory.objects.acreate(channel_name="room")
    small_shards.TASKS = backend("Immediate")
    enqueued = await aenqueue_publish("room", "x")
    assert enqueued.seq == 1
    assert [f["seq"] for f in frames(threaded_fault_endpoint, ids[2])] == [1]
