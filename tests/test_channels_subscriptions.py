"""Many channels per connection: subscribe / unsubscribe / ping through the real view.

Requests go through Django's ASGI handler with the headers API Gateway sends; the frames the
handlers post back go through the in-memory transport (the HTTP boundary), read from its
``network``. The plan test needs PostgreSQL (``AWS_WS_ASYNC_TEST_DB=postgres``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.urls import path
from django.utils import timezone

from aws_ws_async.models import (
    ChannelAccess,
    ChannelPermission,
    ChannelSubscription,
    WebSocketSession,
)
from aws_ws_async.testing import network
from aws_ws_async.views.background import wait_for_background_tasks
from tests.fixtures_channels import frames, open_session, send
from tests.fixtures_views import EchoView

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


class CappedView(EchoView):
    MAX_SUBSCRIPTIONS = 3


class NoChannelsView(EchoView):
    CHANNEL_HANDLERS = frozenset()


class OnlyPingView(EchoView):
    ALLOWED_HANDLERS = {"echo", "ping"}


urlpatterns = [
    path("ws/<slug:route>", EchoView.as_view()),
    path("ws-capped/<slug:route>", CappedView.as_view()),
    path("ws-nochannels/<slug:route>", NoChannelsView.as_view()),
    path("ws-onlyping/<slug:route>", OnlyPingView.as_view()),
]


async def channels(cid: str) -> list[str]:
    rows = ChannelSubscription.objects.filter(session__connection_id=cid)
    return [c async for c in rows.order_by("channel_name").values_list("channel_name", flat=True)]


async def test_subscribe_adds_a_channel_and_posts_subscribed(
    memory: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser)
    response = await send(cid, {"action": "subscribe", "channel": "news"})
    assert (response.status_code, response.json()) == (
        200,
        {"subscribed": "news", "created": True},
    )
    assert await channels(cid) == ["news", "room"]
    await wait_for_background_tasks()
    subscribed = [f for f in frames(cid) if f["type"] == "subscribed"]
    assert [f["channel"] for f in subscribed] == ["news"]
    # The first channel stays the session's channel_name.
    assert (await WebSocketSession.objects.aget(connection_id=cid)).channel_name == "room"


async def test_subscribe_is_idempotent_and_resumes_the_first_channel(
    memory: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser)
    for channel in ("room", "news", "news"):
        response = await send(cid, {"action": "subscribe", "channel": channel, "since": 0})
        assert response.status_code == 200, response.content
    assert response.json()["created"] is False
    assert await channels(cid) == ["news", "room"]
    await wait_for_background_tasks()
    assert [f["channel"] for f in frames(cid) if f["type"] == "subscribed"] == [
        "room",
        "news",
        "news",
    ]


async def test_subscribe_refuses_bad_channels_and_since(
    memory: Any, gateway: Any, browser: Any
) -> None:
    await ChannelPermission.objects.acreate(
        channel_name="admins", access=ChannelAccess.SUPERUSER_ONLY
    )
    cid = await open_session(browser)
    for channel in ["two\n", "", None, 5, "a b", "x" * 129]:
        response = await send(cid, {"action": "subscribe", "channel": channel})
        assert (response.status_code, response.json()["error"]) == (400, "invalid_channel")
    response = await send(cid, {"action": "subscribe", "channel": "admins"})
    assert (response.status_code, response.json()["error"]) == (403, "permission_denied")
    for since in ["3", -1, True, 1.5, [1], 2**63]:  # 2**63: past a bigint seq
        response = await send(cid, {"action": "subscribe", "channel": "news", "since": since})
        assert (response.status_code, response.json()["error"]) == (400, "invalid_since"), since
    assert await channels(cid) == ["room"]
    await wait_for_background_tasks()
    assert frames(cid) == []


async def test_cap_on_subscriptions_per_connection(memory: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser, prefix="/ws-capped")
    for channel in ("a", "b"):
        assert (
            await send(cid, {"action": "subscribe", "channel": channel}, "/ws-capped")
        ).status_code == 200
    response = await send(cid, {"action": "subscribe", "channel": "c"}, "/ws-capped")
    assert (response.status_code, response.json()["error"]) == (409, "too_many_subscriptions")
    assert await channels(cid) == ["a", "b", "room"]
    # Re-subscribing an existing channel at the cap is still fine; leaving one makes room.
    assert (
        await send(cid, {"action": "subscribe", "channel": "a"}, "/ws-capped")
    ).status_code == 200
    assert (
        await send(cid, {"action": "unsubscribe", "channel": "a"}, "/ws-capped")
    ).status_code == 200
    assert (
        await send(cid, {"action": "subscribe", "channel": "c"}, "/ws-capped")
    ).status_code == 200
    assert await channels(cid) == ["b", "c", "room"]


async def test_unsubscribe_the_first_channel_keeps_channel_name(
    memory: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser)
    response = await send(cid, {"action": "unsubscribe", "channel": "room"})
    assert (response.status_code, response.json()) == (
        200,
        {"unsubscribed": "room", "removed": True},
    )
    response = await send(cid, {"action": "unsubscribe", "channel": "room"})
    assert response.json()["removed"] is False  # idempotent
    assert (await send(cid, {"action": "unsubscribe", "channel": "a b"})).status_code == 400
    assert await channels(cid) == []
    session = await WebSocketSession.objects.aget(connection_id=cid)
    assert (session.channel_name, session.connected) == ("room", True)
    assert not await WebSocketSession.objects.subscribed_to("room").aexists()
    await wait_for_background_tasks()
    assert frames(cid) == [{"type": "unsubscribed", "channel": "room"}] * 2


async def test_broadcast_reaches_subscribers_of_a_second_channel_only(
    memory: Any, gateway: Any, browser: Any
) -> None:
    both = await open_session(browser, "room")
    news_only = await open_session(browser, "news")
    room_only = await open_session(browser, "room")
    left = await open_session(browser, "room")
    assert (await send(both, {"action": "subscribe", "channel": "news"})).status_code == 200
    assert (await send(left, {"action": "subscribe", "channel": "news"})).status_code == 200
    assert (await send(left, {"action": "unsubscribe", "channel": "news"})).status_code == 200
    await wait_for_background_tasks()
    network.reset()

    report = await WebSocketSession.objects.subscribed_to("news").asend_message({"n": 1})

    assert sorted(report.delivered) == sorted([both, news_only])
    assert network.posts_to(both) == network.posts_to(news_only) == [b'{"n":1}']
    assert network.posts_to(room_only) == network.posts_to(left) == []
    # A disconnected subscriber is not in the audience.
    await WebSocketSession.objects.filter(connection_id=news_only).aupdate(connected=False)
    assert [s.connection_id async for s in WebSocketSession.objects.subscribed_to("news")] == [both]


async def test_ping_answers_200_and_refreshes_last_seen(
    memory: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser)
    old = timezone.now() - timedelta(minutes=8)
    await WebSocketSession.objects.filter(connection_id=cid).aupdate(last_seen_at=old)
    response = await send(cid, {"action": "ping"})
    assert (response.status_code, response.json()) == (200, {})
    session = await WebSocketSession.objects.aget(connection_id=cid)
    assert session.last_seen_at > old + timedelta(minutes=7)
    await wait_for_background_tasks()
    assert network.posts == []  # nothing is posted back


async def test_builtins_can_be_switched_off_or_left_unlisted(
    memory: Any, gateway: Any, browser: Any
) -> None:
    off = await open_session(browser, prefix="/ws-nochannels")
    for action in ("subscribe", "unsubscribe", "ping", "presence"):
        body = {"action": action, "channel": "news"}
        assert (await send(off, body, "/ws-nochannels")).status_code == 404, action
    only_ping = await open_session(browser, prefix="/ws-onlyping")
    assert (await send(only_ping, {"action": "ping"}, "/ws-onlyping")).status_code == 200
    body = {"action": "subscribe", "channel": "news"}
    assert (await send(only_ping, body, "/ws-onlyping")).status_code == 404
    assert OnlyPingView.get_allowed_handlers() == frozenset({"echo", "ping"})
    assert {"subscribe", "unsubscribe", "ping", "presence"} <= EchoView.get_allowed_handlers()
    assert await channels(off) == ["room"]


async def test_change_channel_moves_the_first_subscription(
    memory: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser, "one")
    assert (await send(cid, {"action": "subscribe", "channel": "extra"})).status_code == 200
    response = await send(cid, {"action": "change_channel", "channel": "two"})
    assert (response.status_code, response.json()) == (200, {"channel": "two"})
    assert await channels(cid) == ["extra", "two"]
    assert (await WebSocketSession.objects.aget(connection_id=cid)).channel_name == "two"
    # Moving onto a channel already subscribed does not duplicate it.
    assert (await send(cid, {"action": "change_channel", "channel": "extra"})).status_code == 200
    assert await channels(cid) == ["extra"]


# --- the audience query's plan on PostgreSQL -----------------------------------------------


def _fill(gateway_id: int, rows: int) -> None:
    now = timezone.now()
    sessions = WebSocketSession.objects.bulk_create(
        [
            WebSocketSession(
                connection_id=f"plan{i:07d}AAAA=",
                channel_name=f"ch{i % 200}",
                api_gateway_id=gateway_id,
                connected=i % 3 != 0,
                connected_at=now,
                last_seen_at=now,
            )
            for i in range(rows)
        ],
        batch_size=2000,
    )
    ChannelSubscription.objects.bulk_create(
        [
            ChannelSubscription(session=s, channel_name=name)
            for s in sessions
            for name in (s.channel_name, "all")
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE aws_ws_async_websocketsession")
        cursor.execute("ANALYZE aws_ws_async_channelsubscription")


@pytest.mark.postgres_only
async def test_the_audience_page_query_uses_the_subscription_index(gateway: Any) -> None:
    from aws_ws_async.models.paging import _page

    await sync_to_async(_fill)(gateway.pk, 20_000)
    audience = WebSocketSession.objects.subscribed_to("ch7").filter(api_gateway_id=gateway.pk)
    first = _page(audience, ("connection_id",), None, 500)
    later = _page(audience, ("connection_id",), 10_000, 500)
    for page in (first, later):
        plan = await sync_to_async(page.explain)()
        assert "wss_subscription_channel" in plan, plan
        assert "Seq Scan on aws_ws_async_channelsubscription" not in plan, plan
        assert "Seq Scan on aws_ws_async_websocketsession" not in plan, plan
    # A channel everyone is in: the page walks the session pk from ``after`` and probes the
    # unique (session, channel) index; it does not read and sort the whole channel per page.
    crowd = WebSocketSession.objects.subscribed_to("all").filter(api_gateway_id=gateway.pk)
    plan = await sync_to_async(_page(crowd, ("connection_id",), 10_000, 500).explain)()
    assert plan.startswith("Limit"), plan
    assert "Sort" not in plan, plan
    assert "Seq Scan" not in plan, plan
    expected = [i for i in range(20_000) if i % 200 == 7 and i % 3 != 0]
    assert len(await sync_to_async(list)(first)) == len(expected) == 67  # of 100 in ch7


async def test_a_join_over_subscriptions_still_posts_once(
    memory: Any, gateway: Any, browser: Any
) -> None:
    """Paging keeps DISTINCT when the query joins (a session in both channels), and drops it
    for ``subscribed_to``'s EXISTS, where no row can repeat."""
    cid = await open_session(browser, "a")
    assert (await send(cid, {"action": "subscribe", "channel": "b"})).status_code == 200
    await wait_for_background_tasks()
    network.reset()
    joined = WebSocketSession.objects.filter(subscriptions__channel_name__in=["a", "b"])
    assert await joined.acount() == 2  # the join repeats the row ...
    report = await joined.asend_message({"once": True})
    assert report.delivered == [cid]  # ... the broadcast does not
    assert network.posts_to(cid) == [b'{"once":true}']


# --- the session admin shows every channel ---------------------------------------------------


def _subscribed(cid: str, gateway: Any, *channels: str) -> WebSocketSession:
    session = WebSocketSession.objects.create(
        connection_id=cid, channel_name=channels[0], api_gateway=gateway
    )
    for channel in channels:
        ChannelSubscription.objects.create(session=session, channel_name=channel)
    return session


@pytest.mark.urls("tests.urls")
def test_admin_lists_filters_and_shows_all_channels(admin_client: Any, gateway: Any) -> None:
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    changelist = reverse("admin:aws_ws_async_websocketsession_changelist")
    first = _subscribed("adm1AAAAAAAA=", gateway, "room", "news")
    _subscribed("adm2AAAAAAAA=", gateway, "room")

    with CaptureQueriesContext(connection) as few:
        page = admin_client.get(changelist)
    assert page.status_code == 200
    html = page.content.decode()
    assert "news, room" in html
    filtered = admin_client.get(changelist, {"subscribed_to": "news"})
    assert [s.connection_id for s in filtered.context["cl"].result_list] == [first.connection_id]
    assert ">news</a>" in filtered.content.decode()  # offered in the sidebar
    for i in range(10):
        _subscribed(f"more{i}AAAAAAA=", gateway, "room", f"c{i}", "news")
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get(changelist).status_code == 200
    assert len(many) == len(few)  # one prefetch per page, not one query per row

    detail = admin_client.get(
        reverse("admin:aws_ws_async_websocketsession_change", args=[first.pk])
    ).content.decode()
    assert "channel subscription" in detail.lower()
    assert "news" in detail


# --- resume: replay, then "subscribed" -------------------------------------------------------


async def test_subscribe_with_since_replays_then_confirms(
    memory: Any, gateway: Any, browser: Any
) -> None:
    from aws_ws_async.channels import apublish
    from aws_ws_async.models.history import ChannelHistory

    await ChannelHistory.objects.acreate(channel_name="news", enabled=True)
    cid = await open_session(browser, "room")
    for n in range(1, 4):
        assert (await apublish("news", {"n": n})).seq == n  # nobody subscribed yet
    network.reset()

    response = await send(cid, {"action": "subscribe", "channel": "news", "since": 1})
    assert response.status_code == 200
    await wait_for_background_tasks()
    assert frames(cid) == [
        {"type": "message", "channel": "news", "seq": 2, "data": {"n": 2}},
        {"type": "message", "channel": "news", "seq": 3, "data": {"n": 3}},
        {"type": "subscribed", "channel": "news", "seq": 3},
    ]
    # Without since: no replay, the baseline only; a channel without history has no seq.
    network.reset()
    for channel in ("news", "plain"):
        assert (await send(cid, {"action": "subscribe", "channel": channel})).status_code == 200
        await wait_for_background_tasks()  # two subscribes' tasks would race each other
    assert frames(cid) == [
        {"type": "subscribed", "channel": "news", "seq": 3},
        {"type": "subscribed", "channel": "plain"},
    ]
    # The live broadcast reaches the new subscriber with the next seq.
    network.reset()
    assert (await apublish("news", {"n": 4})).seq == 4
    assert frames(cid) == [{"type": "message", "channel": "news", "seq": 4, "data": {"n": 4}}]
