"""Sending from the database: QuerySet and session methods, against moto and the fault endpoint."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote, unquote

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from aws_ws_async.delivery import DeliveryReport
from aws_ws_async.exceptions import PayloadTooLarge
from aws_ws_async.models import ApiGateway, WebSocketSession
from aws_ws_async.signals import broadcast_finished
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway, make_sessions

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_async_db_connections"),
]

MESSAGE = {"type": "news", "text": "héllo"}
BODY = json.dumps(MESSAGE, separators=(",", ":"), ensure_ascii=False).encode()


async def setup_rows(count: int, **kwargs: Any) -> tuple[ApiGateway, list[str]]:
    gateway = await sync_to_async(make_gateway)()
    ids = await sync_to_async(make_sessions)(gateway, count, **kwargs)
    return gateway, ids


async def states() -> dict[str, tuple[bool, str]]:
    return {
        cid: (connected, reason)
        async for cid, connected, reason in WebSocketSession.objects.values_list(
            "connection_id", "connected", "disconnect_reason"
        )
    }


# --- moto: messages really arrive ---------------------------------------------------------


async def test_broadcast_reaches_moto(aws_settings: Any) -> None:
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    _, ids = await setup_rows(5)
    report = await WebSocketSession.objects.for_channel("room").asend_message(MESSAGE)
    assert sorted(report.delivered) == ids
    assert not report.failed
    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    # moto keys connections by the raw (percent-encoded) path segment, as botocore sends it.
    stored = {unquote(k): v.data for k, v in backend.connections.items()}
    assert stored == dict.fromkeys(ids, BODY)

    session = await WebSocketSession.objects.aget(connection_id=ids[0])
    single = await session.asend_message("plain text")
    assert single.delivered == [ids[0]]
    assert backend.connections[quote(ids[0], safe="")].data == BODY + b"plain text"

    closed = await session.adisconnect()
    assert closed.delivered == [ids[0]]
    assert quote(ids[0], safe="") not in backend.connections
    await session.arefresh_from_db()
    assert (session.connected, session.disconnect_reason) == (False, "server")


# --- the fault endpoint: exact reports and database effects --------------------------------


async def test_broadcast_report_and_gone_marking(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    _, ids = await setup_rows(50)
    gone = set(ids[3::7])
    fault_endpoint.plan.gone = gone
    fault_endpoint.plan.status_for = {ids[1]: 403}
    fault_endpoint.plan.throttle_first = 1
    fault_endpoint.plan.throttle_ids = {ids[2]}
    await sync_to_async(make_sessions)(None, 3, channel="room", prefix="off", connected=False)

    report = await WebSocketSession.objects.for_channel("room").asend_message(
        MESSAGE, concurrency=8, db_chunk_size=7
    )
    live = set(ids) - gone - {ids[1]}
    assert set(report.delivered) == live
    assert len(report.delivered) == len(live)
    assert set(report.gone) == gone
    assert [(f.connection_id, f.reason, f.status) for f in report.failed] == [
        (ids[1], "forbidden", 403)
    ]
    assert report.retries == 1
    assert report.total == 50
    for cid in live:
        assert fault_endpoint.received[cid] == [BODY]
    assert not any(cid.startswith("off") for cid in fault_endpoint.calls)

    after = await states()
    for cid in gone:
        assert after[cid] == (False, "gone")
    for cid in set(ids) - gone:
        assert after[cid] == (True, "")
    marked = await WebSocketSession.objects.filter(connection_id__in=gone).afirst()
    assert marked is not None
    assert marked.disconnected_at is not None
    assert marked.updated_on >= marked.disconnected_at


async def test_many_gone_are_marked_in_bulk(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    _, ids = await setup_rows(620)
    fault_endpoint.plan.gone = set(ids[:600])  # more than one bulk UPDATE batch
    report = await WebSocketSession.objects.all().asend_message("x", concurrency=20)
    assert len(report.gone) == 600
    assert report.delivered_count == 20
    assert (
        await WebSocketSession.objects.filter(connected=False, disconnect_reason="gone").acount()
        == 600
    )


async def test_multi_gateway_broadcast_uses_each_gateways_endpoint(
    settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    from tests.fixtures_delivery import point_settings_at

    point_settings_at(settings, fault_endpoint.url + "/{api_id}/{stage}")
    g1 = await sync_to_async(make_gateway)("A", "apiaaaaaa1", stage_name="one")
    g2 = await sync_to_async(make_gateway)("B", "apibbbbbb2", stage_name="two")
    ids1 = await sync_to_async(make_sessions)(g1, 15, prefix="a")
    ids2 = await sync_to_async(make_sessions)(g2, 15, prefix="b")
    unprovisioned = await sync_to_async(ApiGateway.objects.create)(api_name="C")
    ids3 = await sync_to_async(make_sessions)(unprovisioned, 2, prefix="u")
    orphans = await sync_to_async(make_sessions)(None, 2, prefix="o")

    report = await WebSocketSession.objects.for_channel("room").asend_message(MESSAGE)
    assert sorted(report.delivered) == sorted(ids1 + ids2)
    assert {cid: fault_endpoint.prefix_of[cid] for cid in ids1} == dict.fromkeys(
        ids1, "/apiaaaaaa1/one"
    )
    assert {cid: fault_endpoint.prefix_of[cid] for cid in ids2} == dict.fromkeys(
        ids2, "/apibbbbbb2/two"
    )
    reasons = {f.connection_id: f.reason for f in report.failed}
    assert reasons == {
        **dict.fromkeys(ids3, "gateway_not_provisioned"),
        **dict.fromkeys(orphans, "no_gateway"),
    }


async def test_payload_too_large_fails_before_sending(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    _, ids = await setup_rows(3)
    with pytest.raises(PayloadTooLarge):
        await WebSocketSession.objects.all().asend_message(b"x" * 131073)
    session = await WebSocketSession.objects.aget(connection_id=ids[0])
    with pytest.raises(PayloadTooLarge):
        await session.asend_message("é" * 65537)  # 131074 bytes in UTF-8
    assert fault_endpoint.requests == 0
    report = await WebSocketSession.objects.all().asend_message(b"x" * 131072)
    assert report.delivered_count == 3


async def test_payload_encoding(fault_settings: Any, fault_endpoint: FaultEndpoint) -> None:
    _, [cid] = await setup_rows(1)
    session = await WebSocketSession.objects.aget(connection_id=cid)
    await session.asend_message({"a": [1, 2], "é": None})
    await session.asend_message([1, "two"])
    await session.asend_message("text ✓")
    await session.asend_message(b"\x00\x01")
    assert fault_endpoint.received[cid] == [
        '{"a":[1,2],"é":null}'.encode(),
        b'[1,"two"]',
        "text ✓".encode(),
        b"\x00\x01",
    ]


async def test_single_session_gone_is_marked(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    _, [cid] = await setup_rows(1)
    fault_endpoint.plan.gone = {cid}
    fault_endpoint.plan.bare = True
    session = await WebSocketSession.objects.select_related("api_gateway").aget(connection_id=cid)
    report = await session.asend_message(MESSAGE)
    assert report.gone == [cid]
    assert not session.connected
    await session.arefresh_from_db()
    assert (session.connected, session.disconnect_reason) == (False, "gone")
    # A disconnected row is not contacted again.
    again = await session.asend_message(MESSAGE)
    assert again.gone == [cid]
    assert fault_endpoint.calls[cid] == 1


async def test_welcome_message_waits_for_connect(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    _, [cid] = await setup_rows(1)
    fault_endpoint.plan.gone_for_seconds = {cid: 0.2}
    session = await WebSocketSession.objects.aget(connection_id=cid)
    report = await session.asend_message({"welcome": True}, gone_retry_seconds=3.0)
    assert report.delivered == [cid]
    assert fault_endpoint.received[cid] == [b'{"welcome":true}']
    await session.arefresh_from_db()
    assert session.connected


async def test_disconnect_queryset_and_session(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    _, ids = await setup_rows(6)
    fault_endpoint.plan.gone = {ids[0]}
    fault_endpoint.plan.status_for = {ids[1]: 403}
    report = await WebSocketSession.objects.filter(connection_id__in=ids[:4]).adisconnect("server")
    assert sorted(report.delivered) == sorted(ids[2:4])
    assert report.gone == [ids[0]]
    assert [f.connection_id for f in report.failed] == [ids[1]]
    assert sorted(fault_endpoint.deleted) == sorted(ids[2:4])
    after = await states()
    assert [after[c] for c in ids] == [
        (False, "server"),
        (True, ""),  # the close failed: the row stays connected
        (False, "server"),
        (False, "server"),
        (True, ""),
        (True, ""),
    ]
    session = await WebSocketSession.objects.aget(connection_id=ids[4])
    single = await session.adisconnect("user_invalid")
    assert single.delivered == [ids[4]]
    await session.arefresh_from_db()
    assert (session.connected, session.disconnect_reason) == (False, "user_invalid")


async def test_send_to_user_reaches_all_their_connections(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    user_model = get_user_model()
    alice = await sync_to_async(user_model._default_manager.create_user)(
        email="alice@example.com", password="pw-123456"
    )
    bob = await sync_to_async(user_model._default_manager.create_user)(
        email="bob@example.com", password="pw-123456"
    )
    gateway = await sync_to_async(make_gateway)()
    alice_ids = await sync_to_async(make_sessions)(gateway, 3, prefix="al", user=alice)
    await sync_to_async(make_sessions)(gateway, 2, prefix="bo", user=bob)
    report = await WebSocketSession.objects.asend_to_user(alice, {"for": "alice"})
    assert sorted(report.delivered) == alice_ids
    assert set(fault_endpoint.received) == set(alice_ids)


async def test_signal_and_log_line(
    fault_settings: Any, fault_endpoint: FaultEndpoint, caplog: Any
) -> None:
    _, ids = await setup_rows(4)
    fault_endpoint.plan.gone = {ids[0]}
    received: list[dict[str, Any]] = []

    def on_finished(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs)

    broadcast_finished.connect(on_finished)
    try:
        with caplog.at_level(logging.INFO, logger="aws_ws_async.sending"):
            report = await WebSocketSession.objects.all().asend_message("hi")
    finally:
        broadcast_finished.disconnect(on_finished)
    assert len(received) == 1
    assert received[0]["report"] is report
    assert received[0]["operation"] == "send"
    assert isinstance(report, DeliveryReport)
    lines = [r.getMessage() for r in caplog.records if r.name == "aws_ws_async.sending"]
    assert len(lines) == 1
    assert "3 delivered, 1 gone, 0 failed" in lines[0]


async def test_gateway_delete_marks_sessions(fault_settings: Any) -> None:
    gateway, _ids = await setup_rows(3)
    await gateway.adelete()
    after = await states()
    assert set(after.values()) == {(False, "gateway_deleted")}
    assert len(after) == 3


@pytest.mark.parametrize("fast_signing", [True, False])
async def test_fast_signing_setting_chooses_the_client_path(
    fault_settings: Any, fault_endpoint: FaultEndpoint, fast_signing: bool
) -> None:
    """Both paths deliver, classify and mark the same; only the request machinery differs.

    botocore's full call path adds its ``amz-sdk-invocation-id`` header; the fast path signs
    and sends the request itself and does not.
    """
    fault_settings.AWS_WS_ASYNC = {**fault_settings.AWS_WS_ASYNC, "fast_signing": fast_signing}
    _, ids = await setup_rows(6)
    fault_endpoint.plan.gone = {ids[0]}

    report = await WebSocketSession.objects.for_channel("room").asend_message(MESSAGE)

    assert set(report.delivered) == set(ids[1:])
    assert report.gone == [ids[0]]
    assert (await states())[ids[0]] == (False, "gone")
    for cid in ids[1:]:
        assert fault_endpoint.received[cid] == [BODY]
        headers = {k.lower() for k in fault_endpoint.headers_of[cid]}
        assert "authorization" in headers
        assert ("amz-sdk-invocation-id" in headers) is (not fast_signing)


async def test_bulk_disconnect_reports_lowered_concurrency(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    """An account-wide throttle during a mass close shows in the report, as for broadcasts."""
    _, ids = await setup_rows(120)
    fault_endpoint.plan.latency = 0.005
    fault_endpoint.plan.max_in_flight = 4
    fault_settings.AWS_WS_ASYNC = {**fault_settings.AWS_WS_ASYNC, "max_throttle_retries": 30}
    report = await WebSocketSession.objects.filter(channel_name="room").adisconnect(concurrency=32)
    assert sorted(report.delivered) == sorted(ids)
    assert report.throttled > 0
    assert report.concurrency == 32
    assert 0 < report.lowest_concurrency < 32
