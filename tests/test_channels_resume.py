"""Resume through the real view: publish, drop, reconnect, subscribe with ``since``, get the rest.

The ``subscribe`` handler (A13's) commits the subscription, then calls ``areplay`` (B13's) and
posts ``subscribed``; the frames go through the in-memory transport (the HTTP boundary) and are
read back per connection from its ``network``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import path

from aws_ws_async.channels import apublish
from aws_ws_async.models import ChannelHistory
from aws_ws_async.views.background import wait_for_background_tasks
from tests.fixtures_channels import frames, open_session, send
from tests.fixtures_views import EchoView

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

urlpatterns = [path("ws/<slug:route>", EchoView.as_view())]


async def subscribe(cid: str, channel: str, since: int | None = None) -> None:
    body: dict[str, Any] = {"action": "subscribe", "channel": channel}
    if since is not None:
        body["since"] = since
    response = await send(cid, body)
    assert response.status_code == 200, response.content
    await wait_for_background_tasks()


async def test_a_reconnecting_client_gets_what_it_missed_then_subscribed(
    memory: Any, gateway: Any, browser: Any
) -> None:
    await ChannelHistory.objects.acreate(channel_name="news")
    first = await open_session(browser)
    await subscribe(first, "news")
    assert frames(first)[-1] == {"type": "subscribed", "channel": "news", "seq": 0}
    for n in (1, 2):
        assert (await apublish("news", {"n": n})).seq == n
    seen = [f["seq"] for f in frames(first) if f["type"] == "message"]
    assert seen == [1, 2]

    # the connection drops; three messages go out meanwhile; a new connection resumes
    for n in (3, 4, 5):
        await apublish("news", {"n": n})
    second = await open_session(browser)
    await subscribe(second, "news", since=seen[-1])

    got = frames(second)
    assert [(f["type"], f.get("seq")) for f in got] == [
        ("message", 3),
        ("message", 4),
        ("message", 5),
        ("subscribed", 5),
    ]
    assert [f["data"] for f in got[:3]] == [{"n": 3}, {"n": 4}, {"n": 5}]
    live = await apublish("news", {"n": 6})
    assert live.seq == 6
    assert frames(second)[-1]["seq"] == 6


async def test_resume_beyond_retention_is_told_with_gap(
    memory: Any, gateway: Any, browser: Any
) -> None:
    from io import StringIO

    from asgiref.sync import sync_to_async
    from django.core.management import call_command

    await ChannelHistory.objects.acreate(channel_name="news", max_messages=2)
    for n in range(1, 6):
        await apublish("news", n)
    await sync_to_async(call_command)("cleanup_websocket_tokens", stdout=StringIO())
    cid = await open_session(browser)
    await subscribe(cid, "news", since=1)
    got = frames(cid)
    assert got[0] == {"type": "gap", "channel": "news", "since": 1, "oldest": 4, "seq": 5}
    assert [f.get("seq") for f in got[1:]] == [4, 5, 5]
    assert got[-1]["type"] == "subscribed"


async def test_history_off_subscribed_has_no_seq_and_nothing_is_replayed(
    memory: Any, gateway: Any, browser: Any
) -> None:
    await apublish("plain", "before")
    cid = await open_session(browser)
    await subscribe(cid, "plain", since=0)
    assert frames(cid) == [{"type": "subscribed", "channel": "plain"}]
