"""The admin dashboard under a real uvicorn, fed by real traffic, looked at in a real browser.

The example project (``example/demo_project``: admin, the chat's WebSocket view, the token view)
runs under uvicorn in a subprocess, with its own database; its ``@connections`` posts go to the
harness's FaultEndpoint. Everything the page shows is made through the server's views, as in
production: a login through the admin's login form, one-time tokens from ``/ws-token/``, five
``$connect`` requests with API Gateway's headers (four in "room", one in "lobby"), a chat
message whose broadcast meets a 410 and a 403, and two refused ``$connect`` requests (a bad
token, a bad gateway secret). The dashboard is then read twice: over HTTP (the tables and the
SVG bars checked), and in headless Chromium driven by Selenium, which logs in through the same
admin form and saves ``test-artifacts/dashboard.png``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from aws_ws_async.testing import FaultEndpoint
from tests.e2e_harness import DemoProject, RunningServer, gateway_headers, serve, wait_until
from tests.fixtures_chromium import headless_chromium
from tests.fixtures_views import new_connection_id

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
DASHBOARD = "/admin/aws_ws_async/websocketsession/dashboard/"
API_ID = "dashe2e001"
ADMIN, PASSWORD = "dash-admin", "dash-admin-password-123"
DEADLINE = aiohttp.ClientTimeout(total=30)
GREEN, YELLOW, RED = "#2e7d32", "#f9a825", "#c62828"

SETUP = f"""
from django.contrib.auth import get_user_model
from aws_ws_async.models import ApiGateway
get_user_model().objects.create_superuser({ADMIN!r}, "dash@example.com", {PASSWORD!r})
ApiGateway.objects.create(api_name="Chat API", api_id={API_ID!r}, stage_name="prod",
    target_base_endpoint="https://chat.example.com/ws/", api_created=True, deployment_id="d1")
"""


@pytest.fixture(scope="module")
def dashboard_server(
    tmp_path_factory: pytest.TempPathFactory, e2e_endpoint: FaultEndpoint
) -> Iterator[tuple[DemoProject, RunningServer]]:
    project = DemoProject(
        tmp_path_factory.mktemp("dashboard"), management_endpoint_url=e2e_endpoint.url
    )
    project.setup()
    try:
        project.shell(SETUP)
        with serve("uvicorn", project, tmp_path_factory.mktemp("dashboard-logs")) as server:
            yield project, server
    finally:
        project.close()


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def admin_login(http: aiohttp.ClientSession, server: RunningServer) -> None:
    """The admin's login form, as a person fills it in (CSRF cookie and field)."""
    async with http.get(f"{server.url}/admin/login/") as response:
        token = csrf_token(await response.text())
    form = {"username": ADMIN, "password": PASSWORD, "csrfmiddlewaretoken": token}
    async with http.post(f"{server.url}/admin/login/?next=/admin/", data=form) as response:
        assert response.status == 200, await response.text()
        assert response.url.path == "/admin/", "the login did not reach the admin index"


def cookie(http: aiohttp.ClientSession, name: str) -> str:
    for morsel in http.cookie_jar:
        if morsel.key == name:
            return morsel.value
    raise AssertionError(f"no {name} cookie after the login")


async def connect(
    http: aiohttp.ClientSession, server: RunningServer, channel: str, *, secret: str = ""
) -> tuple[str, int]:
    """One ``$connect`` as API Gateway forwards it, with a fresh token from ``/ws-token/``."""
    csrf = cookie(http, "csrftoken")
    async with http.post(f"{server.url}/ws-token/", headers={"X-CSRFToken": csrf}) as response:
        assert response.status == 200, await response.text()
        token = (await response.json())["token"]
    cid = new_connection_id()
    headers = gateway_headers(server, cid, api_id=API_ID, session_key=cookie(http, "sessionid"))
    if secret:
        headers["X-Ws-Gateway-Secret"] = secret
    url = f"{server.url}/ws/connect?ws_token={token}&channel={channel}"
    async with http.post(url, headers=headers) as response:
        return cid, response.status


def rows(page: str) -> list[list[str]]:
    found = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    return [
        [
            html.unescape(re.sub(r"<.*?>", "", c)).strip()
            for c in re.findall(r"<td.*?>(.*?)</td>", r)
        ]
        for r in found
    ]


async def make_traffic(server: RunningServer, endpoint: FaultEndpoint) -> str:
    """Connections, a broadcast with a 410 and a 403, two refusals; returns the dashboard page."""
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP-address host
    async with aiohttp.ClientSession(timeout=DEADLINE, cookie_jar=jar) as http:
        await admin_login(http, server)
        room = []
        for _ in range(4):
            cid, status = await connect(http, server, "room")
            assert status == 200, server.log()[-3000:]
            room.append(cid)
        lobby, status = await connect(http, server, "lobby")
        assert status == 200
        everyone = [*room, lobby]
        await wait_until(lambda: all(endpoint.received.get(c) for c in everyone), timeout=20)
        # Each welcome frame (and the presence frames) went out; now two of the room fail.
        endpoint.plan.gone.add(room[0])
        endpoint.plan.status_for[room[1]] = 403
        body = json.dumps({"action": "send_message", "message": "hello, dashboard"})
        headers = gateway_headers(server, room[2], api_id=API_ID)
        async with http.post(f"{server.url}/ws/default", data=body, headers=headers) as response:
            assert response.status == 200, await response.text()
        refused = [await connect(http, server, "room", secret="x" * 40)]
        session_key = cookie(http, "sessionid")
        headers = gateway_headers(
            server, new_connection_id(), api_id=API_ID, session_key=session_key
        )
        async with http.post(
            f"{server.url}/ws/connect?ws_token={'0' * 64}", headers=headers
        ) as response:
            refused.append(("", response.status))
        assert [status for _, status in refused] == [403, 401]
        async with http.get(server.url + DASHBOARD) as response:
            assert response.status == 200
            return await response.text()


#: What the database says is online, per channel (the dashboard must show exactly that).
ONLINE = """
import json
from aws_ws_async.models import ChannelSubscription, WebSocketSession
rows = ChannelSubscription.objects.filter(session__connected=True)
print(json.dumps({"total": WebSocketSession.objects.filter(connected=True).count(),
    "room": rows.filter(channel_name="room").count(),
    "lobby": rows.filter(channel_name="lobby").count()}))
"""


async def test_dashboard_under_uvicorn_shows_real_traffic(
    dashboard_server: tuple[DemoProject, RunningServer], e2e_endpoint: FaultEndpoint
) -> None:
    project, server = dashboard_server
    e2e_endpoint.plan.gone.clear()
    e2e_endpoint.plan.status_for.clear()
    page = await make_traffic(server, e2e_endpoint)
    table = rows(page)
    online = project.shell_json(ONLINE)
    # four joined the room; the one answering 410 is marked gone unless it is still younger
    # than the gone grace (gone_grace_seconds): the page shows what the rows say
    assert online["room"] in (3, 4)
    assert online["lobby"] == 1
    assert ["Chat API", "room", str(online["room"])] in table
    assert ["Chat API", "lobby", "1"] in table
    assert ["connect", "invalid_secret", "1"] in table
    assert ["connect", "invalid_token", "1"] in table
    broadcasts = [r for r in table if len(r) == 8]
    # the chat message: 4 recipients, 2 delivered, room[0] gone, room[1] refused with 403
    assert any(r[1:7] == ["broadcast", "failed", "4", "2", "1", "1"] for r in broadcasts), table
    assert "finished in this process" in page
    # the welcome frames were single sends: charted, not listed
    assert [r for r in broadcasts if r[1] == "session_send"] == []
    assert int(re.findall(r"peak (\d+) recipients", page)[0]) >= 4 + 5
    headline = rf'<span class="ws-big">{online["total"]}</span>\s*connections online'
    assert re.search(headline, page), page[:3000]
    fills = set(
        re.findall(
            r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" '
            r'fill="(#\w+)"><title>',
            page,
        )
    )
    assert fills == {GREEN, YELLOW, RED}
    ours = page.split('id="content-main"', 1)[1]
    assert "<script" not in ours
    screenshot_in_chromium(server)


def screenshot_in_chromium(server: RunningServer) -> None:
    """Log in through the admin form in a real browser, open the dashboard, save a PNG."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    with headless_chromium("1280,1000") as driver:
        driver.get(server.url + DASHBOARD)  # redirected to the login form
        driver.find_element(By.NAME, "username").send_keys(ADMIN)
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        WebDriverWait(driver, 20).until(expected_conditions.url_contains("/dashboard/"))
        main = driver.find_element(By.ID, "content-main")
        assert "connections online" in main.text
        assert "invalid_token" in main.text
        svg = driver.find_element(By.CSS_SELECTOR, "svg.ws-chart")
        assert svg.size["width"] > 300
        # the admin's stylesheet was served and applied (not an unstyled page)
        header = driver.find_element(By.ID, "header")
        assert header.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
        ARTIFACTS.mkdir(exist_ok=True)
        out = ARTIFACTS / "dashboard.png"
        out.unlink(missing_ok=True)
        assert driver.save_screenshot(str(out))
        assert out.stat().st_size > 20_000
