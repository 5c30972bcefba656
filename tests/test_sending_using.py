"""``.using(alias)`` is honoured by every send and close: gateways read and rows marked there.

Two databases, two tenants, and gateway primary keys that coincide: reading the gateway from
the wrong database would post tenant B's sessions through tenant A's API (``/tenanta001``).
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from aws_ws_async.models import ApiGateway, WebSocketSession
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import point_settings_at

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "other"]),
    pytest.mark.usefixtures("close_async_db_connections"),
]

A_IDS = [f"a{i:05d}=" for i in range(4)]
B_IDS = [f"b{i:05d}=" for i in range(4)]


def tenants(settings: Any, endpoint: FaultEndpoint) -> None:
    point_settings_at(settings, endpoint.url + "/{api_id}/{stage}")
    gateways = {}
    for alias, api_id, ids in (("default", "tenanta001", A_IDS), ("other", "tenantb002", B_IDS)):
        gateway = ApiGateway.objects.using(alias).create(
            pk=7,  # the same primary key on both databases
            api_name=f"API {alias}",
            api_id=api_id,
            stage_name="prod",
            api_created=True,
            deployment_id="dep1",
        )
        WebSocketSession.objects.using(alias).bulk_create(
            WebSocketSession(connection_id=cid, channel_name="room", api_gateway=gateway)
            for cid in ids
        )
        gateways[alias] = gateway
    assert gateways["default"].pk == gateways["other"].pk  # the trap: same pk, other API


def rows(alias: str) -> dict[str, tuple[bool, str]]:
    return {
        cid: (connected, reason)
        for cid, connected, reason in WebSocketSession.objects.using(alias).values_list(
            "connection_id", "connected", "disconnect_reason"
        )
    }


async def test_async_broadcast_and_close_on_the_other_database(
    settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    await sync_to_async(tenants)(settings, fault_endpoint)
    fault_endpoint.plan.gone = {B_IDS[0]}

    report = await WebSocketSession.objects.using("other").for_channel("room").asend_message("b")

    assert sorted(report.delivered) == B_IDS[1:]
    assert {fault_endpoint.prefix_of[c] for c in B_IDS} == {"/tenantb002/prod"}
    assert not set(fault_endpoint.received) & set(A_IDS)
    other = await sync_to_async(rows)("other")
    assert other[B_IDS[0]] == (False, "gone")
    assert set((await sync_to_async(rows)("default")).values()) == {(True, "")}

    closed = (
        await WebSocketSession.objects.using("other")
        .filter(connection_id__in=B_IDS[1:3])
        .adisconnect()
    )
    assert sorted(closed.delivered) == B_IDS[1:3]
    other = await sync_to_async(rows)("other")
    assert [other[c] for c in B_IDS[1:3]] == [(False, "server")] * 2


async def test_single_session_on_the_other_database(
    settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    await sync_to_async(tenants)(settings, fault_endpoint)
    fault_endpoint.plan.gone = {B_IDS[1]}
    first = await WebSocketSession.objects.using("other").aget(connection_id=B_IDS[0])
    assert (await first.asend_message("one")).delivered == [B_IDS[0]]
    gone = await WebSocketSession.objects.using("other").aget(connection_id=B_IDS[1])
    assert (await gone.asend_message("two")).gone == [B_IDS[1]]
    closing = await WebSocketSession.objects.using("other").aget(connection_id=B_IDS[2])
    assert (await closing.adisconnect("user_invalid")).delivered == [B_IDS[2]]

    assert {fault_endpoint.prefix_of[c] for c in B_IDS[:3]} == {"/tenantb002/prod"}
    other = await sync_to_async(rows)("other")
    assert other[B_IDS[1]] == (False, "gone")
    assert other[B_IDS[2]] == (False, "user_invalid")
    assert set((await sync_to_async(rows)("default")).values()) == {(True, "")}


def test_sync_twins_on_the_other_database(
    settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    tenants(settings, threaded_fault_endpoint)
    threaded_fault_endpoint.plan.gone = {B_IDS[0]}

    report = WebSocketSession.objects.using("other").all().send_message("b", db_chunk_size=2)
    assert sorted(report.delivered) == B_IDS[1:]
    session = WebSocketSession.objects.using("other").get(connection_id=B_IDS[1])
    assert session.send_message("again").delivered == [B_IDS[1]]
    assert session.disconnect().delivered == [B_IDS[1]]
    closed = WebSocketSession.objects.using("other").filter(connection_id=B_IDS[2]).disconnect()
    assert closed.delivered == [B_IDS[2]]

    assert {threaded_fault_endpoint.prefix_of[c] for c in B_IDS} == {"/tenantb002/prod"}
    other = rows("other")
    assert other[B_IDS[0]] == (False, "gone")
    assert other[B_IDS[1]] == other[B_IDS[2]] == (False, "server")
    assert set(rows("default").values()) == {(True, "")}


def test_gateway_delete_marks_sessions_on_its_database(
    settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    tenants(settings, threaded_fault_endpoint)
    ApiGateway.objects.using("other").get(api_id="tenantb002").delete()
    assert set(rows("other").values()) == {(False, "gateway_deleted")}
    assert set(rows("default").values()) == {(True, "")}
