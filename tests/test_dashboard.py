"""The admin dashboard: connections by gateway and channel, recent broadcasts, refusals, SVG chart.

Data are made for real (rows, a broadcast through the fault endpoint, a refused $connect through
the ASGI handler); the page is read through the admin with the test client, and screenshotted
with headless chromium into ``test-artifacts/dashboard-client.png`` (static files from the live
server; ``tests/test_e2e_dashboard.py`` makes ``dashboard.png`` under a real uvicorn).
"""

from __future__ import annotations

import datetime
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from aws_ws_async.models import Broadcast, WebSocketSession
from aws_ws_async.telemetry import recent
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway, make_sessions
from tests.fixtures_views import Browser, connect, new_connection_id

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_async_db_connections"),
]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
URL = "admin:aws_ws_async_dashboard"


def staff_client() -> Client:
    user = get_user_model().objects.create_superuser(email="root@example.com", password="pw")
    client = Client()
    client.force_login(user)
    return client


def cells(html: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    return [
        [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<td.*?>(.*?)</td>", r)] for r in rows
    ]


async def make_traffic(fault_endpoint: FaultEndpoint, browser: Browser) -> None:
    recent.clear()
    lobby = await sync_to_async(make_gateway)("Lobby API", "lob0000001")
    # connected a minute ago: older than any gone grace, so the 410s mark their rows
    ago = timezone.now() - datetime.timedelta(minutes=1)
    ids = await sync_to_async(make_sessions)(lobby, 12, channel="room", connected_at=ago)
    await sync_to_async(make_sessions)(lobby, 3, channel="", prefix="nochan")
    fault_endpoint.plan.gone = set(ids[:2])
    fault_endpoint.plan.status_for = {ids[2]: 403}
    report = await WebSocketSession.objects.for_channel("room").asend_message({"n": 1})
    assert (report.delivered_count, len(report.gone), len(report.failed)) == (9, 2, 1)
    # A broadcast that found nobody (a presence hint to a room of one) is not listed.
    await WebSocketSession.objects.for_channel("nobody-here").asend_message({"n": 0})
    for _ in range(2):
        response = await connect(browser, new_connection_id(), origin=None)
        assert response.status_code == 400


async def test_dashboard_shows_connections_broadcasts_refusals_and_chart(
    fault_settings: Any,
    fault_endpoint: FaultEndpoint,
    ws_settings: Any,
    gateway: Any,
    browser: Browser,
    live_server: Any,
) -> None:
    await make_traffic(fault_endpoint, browser)
    client = await sync_to_async(staff_client)()
    response = await sync_to_async(client.get)(reverse(URL))
    assert response.status_code == 200
    html = response.content.decode()
    table = cells(html)
    assert ["Lobby API", "room", "10"] in table  # 12 minus the 2 found gone
    assert ["Lobby API", "(no channel)", "3"] in table
    assert ["connect", "missing_header", "2"] in table
    [row] = [r for r in table if r[1:2] == ["broadcast"]]
    assert row[2:7] == ["failed", "12", "9", "2", "1"]
    assert "finished in this process" in html
    bars = re.findall(
        r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)" fill="(#\w+)"><title>', html
    )
    assert {fill for _, fill in bars} == {"#2e7d32", "#f9a825", "#c62828"}
    heights = {fill: float(h) for h, fill in bars}
    assert heights["#2e7d32"] == pytest.approx(112 * 9 / 12, abs=0.1)  # delivered: 9 of the peak 12
    assert heights["#c62828"] == pytest.approx(112 * 1 / 12, abs=0.1)
    ours = html.split('id="content-main"', 1)[1]
    assert "<script" not in ours  # server-rendered: no JavaScript of ours
    assert "https://" not in html  # no CDN
    screenshot(html, live_server.url)


def screenshot(html: str, base: str) -> None:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium for the screenshot")
    ARTIFACTS.mkdir(exist_ok=True)
    page = ARTIFACTS / "dashboard.html"
    page.write_text(html.replace('"/static/', f'"{base}/static/'))
    out = ARTIFACTS / "dashboard-client.png"
    out.unlink(missing_ok=True)
    subprocess.run(
        [
            str(CHROMIUM),
            *("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"),
            "--window-size=1200,900",
            f"--screenshot={out}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert out.stat().st_size > 10_000


def test_dashboard_prefers_persisted_broadcasts(db: None) -> None:
    recent.clear()
    Broadcast.objects.create(
        model_label="aws_ws_async.websocketsession",
        query=b"",
        payload=b"",
        shard_size=10,
        checkpoint_every=5,
        status="finished",
        recipients=70,
        delivered=61,
        gone=5,
        failed=4,
    )
    html = staff_client().get(reverse(URL)).content.decode()
    [row] = [r for r in cells(html) if r[1:2] == ["enqueued"]]
    assert row[2:7] == ["finished", "70", "61", "5", "4"]
    assert "enqueued broadcasts" in html


def test_dashboard_needs_the_view_permission(db: None) -> None:
    user = get_user_model().objects.create_user(email="staff@example.com", password="pw")
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    assert client.get(reverse(URL)).status_code == 403
    anonymous = Client().get(reverse(URL))
    assert anonymous.status_code == 302  # to the admin login


def test_connections_count_in_every_subscribed_channel(
    db: None, django_assert_num_queries: Any
) -> None:
    """A connection subscribed to two channels is in both groups; one without subscription
    rows is under its first channel; a disconnected one nowhere. Two queries, whatever N."""
    from aws_ws_async.admin_dashboard import connection_groups
    from aws_ws_async.models import ChannelSubscription

    lobby = make_gateway("Lobby API", "lob0000001")
    make_sessions(lobby, 3, channel="room", prefix="r", subscribe=False)
    make_sessions(lobby, 2, channel="old", prefix="o", connected=False, subscribe=False)
    subscribed = list(WebSocketSession.objects.filter(connection_id__startswith="r"))
    ChannelSubscription.objects.bulk_create(
        [ChannelSubscription(session=s, channel_name="room") for s in subscribed]
        + [ChannelSubscription(session=subscribed[0], channel_name="lobby")]
        + [
            ChannelSubscription(session=s, channel_name="old")
            for s in WebSocketSession.objects.filter(connected=False)
        ]
    )
    make_sessions(lobby, 1, channel="legacy", prefix="l", subscribe=False)  # legacy rows
    with django_assert_num_queries(2):
        groups = connection_groups()
    assert groups == [
        {"gateway": "Lobby API", "channel": "room", "count": 3},
        {"gateway": "Lobby API", "channel": "legacy", "count": 1},
        {"gateway": "Lobby API", "channel": "lobby", "count": 1},
    ]
