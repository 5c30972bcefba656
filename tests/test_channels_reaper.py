"""The reaper: doubtful sessions probed with ``GET @connections/{id}``; the 410 ones marked.

Against the in-memory transport (scripted answers) and, end to end, against the emulator's
management API through the default aiobotocore transport: a real client's connection answers
200 and stays, a row whose socket the emulator does not have answers 410 and ends ``gone``.
"""

from __future__ import annotations

import io
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import views as auth_views
from django.core.management import call_command
from django.urls import path
from django.utils import timezone

from aws_ws_async.channels import apresence
from aws_ws_async.channels.reaper import aconfirm, confirm, doubtful
from aws_ws_async.emulator import EmulatorConfig
from aws_ws_async.models import ApiGateway, ChannelSubscription, WebSocketSession
from aws_ws_async.testing import network
from aws_ws_async.views import WebSocketTokenView
from tests.fixtures_channels import MEMORY_MANAGEMENT_URL, serve_urlconf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "example"))

from chat.websocket import ChatWebSocketView

pytestmark = pytest.mark.django_db(transaction=True)

urlpatterns = [
    path("ws/<slug:route>", ChatWebSocketView.as_view()),
    path("ws-token/", WebSocketTokenView.as_view()),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="admin/login.html")),
]


@pytest.fixture
def memory(settings: Any) -> Any:
    settings.AWS_WS_ASYNC = {
        **getattr(settings, "AWS_WS_ASYNC", {}),
        "management_endpoint_url": MEMORY_MANAGEMENT_URL,
        "transport": "aws_ws_async.testing.InMemoryTransport",
        "backoff_base_seconds": 0.001,
    }
    network.reset()
    return network


def rows(gateway: ApiGateway) -> dict[str, WebSocketSession]:
    """fresh / doubtful x3 / stale / closed sessions of one gateway, all in channel "room"."""
    now = timezone.now()
    made: dict[str, WebSocketSession] = {}
    ages = {
        "fresh": timedelta(0),
        "quiet1": timedelta(minutes=6),
        "quiet2": timedelta(minutes=7),
        "quiet3": timedelta(minutes=8),
        "stale": timedelta(minutes=30),
    }
    for name, age in ages.items():
        made[name] = WebSocketSession.objects.create(
            connection_id=f"{name}AAAAAAA=",
            api_gateway=gateway,
            channel_name="room",
            last_seen_at=now - age,
        )
    made["closed"] = WebSocketSession.objects.create(
        connection_id="closedAAAAAAA=",
        api_gateway=gateway,
        connected=False,
        last_seen_at=now - timedelta(minutes=6),
    )
    for session in made.values():
        ChannelSubscription.objects.create(session=session, channel_name="room")
    return made


def test_doubtful_is_silent_but_not_certainly_stale(db: None, gateway: Any) -> None:
    made = rows(gateway)
    assert sorted(s.connection_id for s in doubtful()) == sorted(
        made[n].connection_id for n in ("quiet1", "quiet2", "quiet3")
    )
    assert doubtful(idle=timedelta(minutes=7, seconds=30)).get() == made["quiet3"]
    with pytest.raises(ValueError, match="idle must be a timedelta"):
        doubtful(idle=timedelta(seconds=-1))


def test_confirm_marks_only_the_gone_ones(memory: Any, gateway: Any) -> None:
    made = rows(gateway)
    gone = made["quiet2"].connection_id
    network.script(gone, "gone")
    network.script(made["quiet3"].connection_id, "throttle", times=1)  # retried, then 200

    report = confirm(doubtful())

    assert report.gone == [gone]
    assert sorted(report.delivered) == sorted(
        [made["quiet1"].connection_id, made["quiet3"].connection_id]
    )
    assert (report.throttled, report.failed) == (1, [])
    assert sorted(c.connection_id for c in network.gets) == sorted(
        [made[n].connection_id for n in ("quiet1", "quiet2", "quiet3")]
        + [made["quiet3"].connection_id]
    )
    assert network.posts == network.deletes == []  # a probe posts and closes nothing
    row = WebSocketSession.objects.get(connection_id=gone)
    assert (row.connected, row.disconnect_reason) == (False, "gone")
    still = WebSocketSession.objects.filter(connected=True).values_list("connection_id", flat=True)
    assert gone not in set(still)
    assert len(still) == 4  # fresh, quiet1, quiet3, stale (the stale cleanup's job)


async def test_aconfirm_and_presence(memory: Any, gateway: Any) -> None:
    made = await sync_to_async(rows)(gateway)
    for name in ("quiet1", "quiet3"):
        network.script(made[name].connection_id, "gone")
    before = (await apresence("room")).connections
    report = await aconfirm(doubtful(), concurrency=2)
    assert sorted(report.gone) == sorted(
        [made["quiet1"].connection_id, made["quiet3"].connection_id]
    )
    assert report.delivered == [made["quiet2"].connection_id]
    # Presence counted the anonymous quiet ones (within the idle rule); the gone ones left it.
    assert (before, (await apresence("room")).connections) == (4, 2)


def test_command(memory: Any, gateway: Any) -> None:
    made = rows(gateway)
    network.script(made["quiet1"].connection_id, "gone")
    out = io.StringIO()
    call_command("confirm_websocket_sessions", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "Would probe 3 session(s) idle over 300 s."
    assert network.calls == []
    out = io.StringIO()
    call_command("confirm_websocket_sessions", "--idle", "390", stdout=out)
    assert "Probed 2 session(s): 2 open, 0 gone" in out.getvalue()
    out = io.StringIO()
    call_command("confirm_websocket_sessions", "--concurrency", "1", stdout=out)
    assert "Probed 3 session(s): 2 open, 1 gone (marked disconnected), 0 unknown." in out.getvalue()
    assert not WebSocketSession.objects.get(pk=made["quiet1"].pk).connected
    from django.core.management.base import CommandError

    for bad in (["--idle", "-1"], ["--concurrency", "0"], ["--timeout", "0"]):
        with pytest.raises(CommandError):
            call_command("confirm_websocket_sessions", *bad)


# --- end to end: the emulator's GET @connections --------------------------------------------


@pytest.fixture
def ws_gateway_emulator_config(asgi_server_factory: Any, settings: Any) -> EmulatorConfig:
    return serve_urlconf(asgi_server_factory, settings, __name__)


@pytest.mark.e2e
async def test_the_emulator_answers_410_for_a_lost_connection(ws_client: Any) -> None:
    from django.contrib.auth import get_user_model

    manager = get_user_model()._default_manager
    user = await sync_to_async(manager.create_user)(email="r@example.com", password="pw-reap-1!")
    async with ws_client(user=user, channel="room") as ws:
        await ws.receive_json(timeout=10)  # the welcome
        live = await WebSocketSession.objects.aget(user=user)
        gateway = await ApiGateway.objects.aget(pk=live.api_gateway_id)
        # A row whose $disconnect never arrived: the emulator has no such socket.
        lost = await WebSocketSession.objects.acreate(
            connection_id="lostConnAAAA=", api_gateway=gateway, channel_name="room", user=user
        )
        quiet = timezone.now() - timedelta(minutes=6)
        await WebSocketSession.objects.filter(pk__in=[live.pk, lost.pk]).aupdate(last_seen_at=quiet)

        report = await aconfirm(doubtful())

        assert (report.delivered, report.gone, report.failed) == (
            [live.connection_id],
            [lost.connection_id],
            [],
        )
        lost_row = await WebSocketSession.objects.aget(pk=lost.pk)
        assert (lost_row.connected, lost_row.disconnect_reason) == (False, "gone")
        assert (await WebSocketSession.objects.aget(pk=live.pk)).connected


def _watched(gateway: ApiGateway) -> tuple[WebSocketSession, WebSocketSession, WebSocketSession]:
    from django.contrib.auth import get_user_model

    manager = get_user_model()._default_manager
    alice = manager.create_user(email="alice@example.com", password="pw-reap-2!")
    bob = manager.create_user(email="bob@example.com", password="pw-reap-3!")
    quiet = timezone.now() - timedelta(minutes=6)
    made = []
    for cid, user, seen in (("aliceGoneAAA=", alice, quiet), ("aliceTabAAAA=", alice, quiet)):
        made.append(
            WebSocketSession.objects.create(
                connection_id=cid, user=user, api_gateway=gateway, last_seen_at=seen
            )
        )
    watcher = WebSocketSession.objects.create(
        connection_id="bobWatchAAAA=", user=bob, api_gateway=gateway
    )
    for session in (*made, watcher):
        ChannelSubscription.objects.create(session=session, channel_name="room")
    return made[0], made[1], watcher


def _leaves(cid: str) -> list[tuple[str, int, int]]:
    import json

    frames = [json.loads(body) for body in network.posts_to(cid)]
    return [(f["user"], f["connections"], f["count"]) for f in frames if f.get("event") == "leave"]


def test_announce_leaves_for_the_last_gone_connection(memory: Any, gateway: Any) -> None:
    gone, other_tab, watcher = _watched(gateway)
    network.script(gone.connection_id, "gone")
    confirm(doubtful(), announce_leaves=True)
    assert _leaves(watcher.connection_id) == []  # alice still has her other tab
    network.script(other_tab.connection_id, "gone")
    report = confirm(doubtful(), announce_leaves=True)
    assert report.gone == [other_tab.connection_id]
    assert _leaves(watcher.connection_id) == [("alice@example.com", 0, 1)]
    assert network.posts_to(gone.connection_id) == []  # the gone are never posted to


async def test_aconfirm_announces_leaves_too(memory: Any, gateway: Any) -> None:
    gone, other_tab, watcher = await sync_to_async(_watched)(gateway)
    for session in (gone, other_tab):
        network.script(session.connection_id, "gone")
    report = await aconfirm(doubtful(), announce_leaves=True)
    assert sorted(report.gone) == sorted([gone.connection_id, other_tab.connection_id])
    assert _leaves(watcher.connection_id) == [("alice@example.com", 0, 1)]
    # Both of alice's tabs went in one run: one leave, not two. Nothing left to probe after.
    network.reset()
    assert (await aconfirm(doubtful(), announce_leaves=True)).total == 0
    assert network.calls == []
