"""The admin's actions over HTTP under real uvicorn, daphne, runserver and gunicorn (9.1, 11.5).

Under ASGI a sync admin action runs in ``sync_to_async(thread_sensitive=True)``; the old bridge
handed provisioning to its loop with the request's context, so the work was queued on the very
thread blocked waiting for it and every action hung forever. The test client never shows that,
so here a real server serves ``tests/e2e_project`` (admin enabled), a real browser-like client
logs in with CSRF, and each action is a POST with a 30 s deadline. AWS is moto behind the small
local endpoint of ``tests/fixtures_provisioning.py`` (it answers what moto lacks, e.g.
``CreateDeployment``); the assertions read moto's state with boto3 and the admin's messages.
The session operations (disconnect, send to the selection, send to a channel) post to the
harness's FaultEndpoint; the assertions read what it received and the rows the server marked.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from aws_ws_async.testing import FaultEndpoint
from tests.e2e_harness import E2EProject, RunningServer
from tests.fixtures_provisioning import LocalApiGateway

pytestmark = pytest.mark.e2e

DEADLINE = aiohttp.ClientTimeout(total=30)
CHANGELIST = "/admin/aws_ws_async/apigateway/"
ADMIN_USER, ADMIN_PASSWORD = "e2e-admin", "e2e-admin-password-123"
BACKEND = "https://backend.example.com/ws/"
SECRET_HEADER = "integration.request.header.X-Ws-Gateway-Secret"


@pytest.fixture(scope="module")
def admin_apigw(moto_server: str) -> Iterator[LocalApiGateway]:
    endpoint = LocalApiGateway(moto_server)
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture(scope="module")
def e2e_project(
    tmp_path_factory: pytest.TempPathFactory,
    admin_apigw: LocalApiGateway,
    e2e_endpoint: FaultEndpoint,
) -> Iterator[E2EProject]:
    """The e2e project with provisioning pointed at the local endpoint, and a superuser.

    It overrides the harness's ``e2e_project`` in this module, so the harness's
    ``e2e_any_server`` (uvicorn, daphne, runserver, gunicorn) serves this one. ``@connections``
    is the harness's FaultEndpoint (the session operations post and DELETE there).
    """
    project = E2EProject(
        tmp_path_factory.mktemp("e2e-admin"),
        management_endpoint_url=e2e_endpoint.url,
        aws_endpoint_url=admin_apigw.url,
    )
    project.setup()
    project.shell(
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_superuser({ADMIN_USER!r}, 'a@example.com', "
        f"{ADMIN_PASSWORD!r})"
    )
    try:
        yield project
    finally:
        project.close()


def domain_of(name: str) -> str:
    return f"ws-{re.sub(r'[^a-z0-9]+', '-', name.lower())}.example.com"


def make_gateway(project: E2EProject, name: str) -> int:
    """A gateway row (not yet in AWS) with a custom domain filled in; returns its pk."""
    out = project.shell(
        "from aws_ws_async.models import ApiGateway; "
        f"g = ApiGateway.objects.create(api_name={name!r}, stage_name='production', "
        f"target_base_endpoint={BACKEND!r}, domain_name={domain_of(name)!r}, "
        "certificate_arn='arn:aws:acm:us-east-1:123456789012:certificate/abc'); "
        "print(g.pk)"
    )
    return int(out.strip().splitlines()[-1])


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def admin_messages(page: str) -> list[tuple[str, str]]:
    """(level, text) of each message the admin shows."""
    block = re.search(r'<ul class="messagelist">(.*?)</ul>', page, re.S)
    if block is None:
        return []
    items = re.findall(r'<li class="([a-z]+)">(.*?)</li>', block.group(1), re.S)
    return [(level, html.unescape(text).strip()) for level, text in items]


async def login(http: aiohttp.ClientSession, server: RunningServer) -> None:
    async with http.get(f"{server.url}/admin/login/") as response:
        token = csrf_token(await response.text())
    form = {
        "username": ADMIN_USER,
        "password": ADMIN_PASSWORD,
        "csrfmiddlewaretoken": token,
        "next": "/admin/",
    }
    async with http.post(f"{server.url}/admin/login/?next=/admin/", data=form) as response:
        assert response.status == 200, await response.text()
        assert response.url.path == "/admin/", "login did not reach the admin index"


async def run_action(
    http: aiohttp.ClientSession, server: RunningServer, action: str, pk: int
) -> list[tuple[str, str]]:
    """POST one changelist action (within the session's 30 s deadline); its messages."""
    async with http.get(server.url + CHANGELIST) as response:
        token = csrf_token(await response.text())
    form = {
        "action": action,
        "_selected_action": str(pk),
        "select_across": "0",
        "index": "0",
        "csrfmiddlewaretoken": token,
    }
    async with http.post(server.url + CHANGELIST, data=form) as response:
        page = await response.text()
        assert response.status == 200, page[:2000]
    messages = admin_messages(page)
    assert messages, f"{action}: the admin showed no message under {server.name}"
    return messages


def api_named(apigw: Any, name: str) -> dict[str, Any]:
    apis = [a for a in apigw.get_apis()["Items"] if a["Name"] == name]
    assert len(apis) == 1, apis
    return dict(apis[0])


async def test_every_provisioning_action_over_http(
    e2e_any_server: RunningServer,
    e2e_project: E2EProject,
    admin_apigw: LocalApiGateway,
    moto_apigw: Any,
) -> None:
    name = f"E2E {e2e_any_server.name} {os.urandom(3).hex()}"
    pk = make_gateway(e2e_project, name)
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for an IP-address host
    async with aiohttp.ClientSession(timeout=DEADLINE, cookie_jar=jar) as http:
        await login(http, e2e_any_server)

        created = await run_action(http, e2e_any_server, "create_api_gateway", pk)
        assert created[0][0] == "success", created
        assert "created and deployed" in created[0][1]
        api_id = api_named(moto_apigw, name)["ApiId"]
        routes = {r["RouteKey"] for r in moto_apigw.get_routes(ApiId=api_id)["Items"]}
        assert routes == {"$connect", "$disconnect", "$default"}
        assert admin_apigw.calls("POST", f"/v2/apis/{api_id}/deployments")

        assert await run_action(http, e2e_any_server, "detect_drift", pk) == [
            ("success", f"{name}: already in sync with AWS")
        ]

        moto_apigw.update_api(ApiId=api_id, Description="edited in the console")
        pulled = await run_action(http, e2e_any_server, "sync_from_aws", pk)
        assert pulled[0][0] == "success", pulled
        assert "took 1 change(s) from AWS" in pulled[0][1]

        moto_apigw.update_api(ApiId=api_id, Name=f"{name} renamed")
        drift = await run_action(http, e2e_any_server, "detect_drift", pk)
        assert f"api_name is '{name} renamed' in AWS" in drift[0][1], drift
        pushed = await run_action(http, e2e_any_server, "sync_to_aws", pk)
        assert "pushed 1 change(s) and redeployed" in pushed[0][1], pushed
        assert moto_apigw.get_api(ApiId=api_id)["Name"] == name
        assert moto_apigw.get_api(ApiId=api_id)["Description"] == "edited in the console"

        default = next(
            r for r in moto_apigw.get_routes(ApiId=api_id)["Items"] if r["RouteKey"] == "$default"
        )
        integration_id = default["Target"].split("/", 1)[1]
        moto_apigw.update_integration(
            ApiId=api_id,
            IntegrationId=integration_id,
            RequestParameters={SECRET_HEADER: "'forged'"},
        )
        rotated = await run_action(http, e2e_any_server, "update_integrations", pk)
        assert "updated 1 integration(s)" in rotated[0][1], rotated
        parameters = moto_apigw.get_integration(ApiId=api_id, IntegrationId=integration_id)[
            "RequestParameters"
        ]
        assert parameters[SECRET_HEADER] != "'forged'"

        domain = await run_action(http, e2e_any_server, "create_custom_domain", pk)
        assert domain[0][0] == "success", domain
        mappings = moto_apigw.get_api_mappings(DomainName=domain_of(name))["Items"]
        assert [(m["ApiId"], m["Stage"]) for m in mappings] == [(api_id, "production")]

    state = json.loads(
        e2e_project.shell(
            "import json; from aws_ws_async.models import ApiGateway; "
            f"g = ApiGateway.objects.get(pk={pk}); "
            "print(json.dumps([g.provisioning_status, g.provisioning_claim, g.last_error]))"
        )
        .strip()
        .splitlines()[-1]
    )
    assert state == ["mapped", "", ""]


async def test_change_form_save_pushes_gateway_and_new_route_after_commit(
    e2e_any_server: RunningServer, e2e_project: E2EProject, moto_apigw: Any
) -> None:
    """A save in the change form pushes in ``on_commit``, in the request's own thread."""
    name = f"E2E form {e2e_any_server.name} {os.urandom(3).hex()}"
    pk = make_gateway(e2e_project, name)
    # Provisioned from plain sync code (a shell), so only the save runs under the server.
    e2e_project.shell(
        "from aws_ws_async.models import ApiGateway; "
        f"ApiGateway.objects.get(pk={pk}).create_gateway()"
    )
    api_id = api_named(moto_apigw, name)["ApiId"]
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(timeout=DEADLINE, cookie_jar=jar) as http:
        await login(http, e2e_any_server)

        change = f"{e2e_any_server.url}{CHANGELIST}{pk}/change/"
        async with http.get(change) as response:
            token = csrf_token(await response.text())
        inline = "additional_routes"
        form = {
            "csrfmiddlewaretoken": token,
            "api_name": name,
            "api_description": "saved in the change form",
            "default_channel_name": "",
            "target_base_endpoint": BACKEND,
            "stage_name": "production",
            "stage_description": "",
            "domain_name": domain_of(name),
            "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
            "hosted_zone_id": "",
            "api_key_selection_expression": "$request.header.x-api-key",
            "route_selection_expression": "$request.body.action",
            "route_key": "$default",
            "tags": "{}",
            "management_endpoint_url": "",
            f"{inline}-TOTAL_FORMS": "1",
            f"{inline}-INITIAL_FORMS": "0",
            f"{inline}-MIN_NUM_FORMS": "0",
            f"{inline}-MAX_NUM_FORMS": "1000",
            f"{inline}-0-name": "Send",
            f"{inline}-0-route_key": "sendmessage",
            f"{inline}-0-integration_url": BACKEND + "sendmessage",
            f"{inline}-0-api_gateway": str(pk),
            "_save": "Save",
        }
        async with http.post(change, data=form) as response:
            page = await response.text()
            assert response.status == 200, page[:2000]
        saved = admin_messages(page)
        assert saved, page[:3000]
        assert saved[0][0] == "success", saved

    assert moto_apigw.get_api(ApiId=api_id)["Description"] == "saved in the change form"
    routes = {r["RouteKey"] for r in moto_apigw.get_routes(ApiId=api_id)["Items"]}
    assert "sendmessage" in routes


# --- the session operations (11.5) ------------------------------------------------------------

SESSIONS = "/admin/aws_ws_async/websocketsession/"


def make_sessions(project: E2EProject, tag: str, channel: str, count: int) -> list[tuple[int, str]]:
    """A provisioned gateway and ``count`` connected sessions on ``channel``: (pk, id) each.

    Each session gets its first channel's subscription row, as ``$connect`` inserts it.
    """
    out = project.shell(
        "import json; from aws_ws_async.models import ApiGateway, ChannelSubscription, "
        "WebSocketSession; "
        f"g = ApiGateway.objects.create(api_name={'Ops ' + tag!r}, api_id={tag[:10]!r}, "
        "stage_name='ops', api_created=True, deployment_id='d1'); "
        "rows = [WebSocketSession.objects.create(connection_id=f'"
        + tag
        + "{i}=', channel_name="
        + repr(channel)
        + f", api_gateway=g) for i in range({count})]; "
        "[ChannelSubscription.objects.create(session=r, channel_name=r.channel_name, "
        "subscribed_at=r.connected_at) for r in rows]; "
        "print(json.dumps([[r.pk, r.connection_id] for r in rows]))"
    )
    return [(int(pk), cid) for pk, cid in json.loads(out.strip().splitlines()[-1])]


def session_state(project: E2EProject, ids: list[str]) -> dict[str, list[Any]]:
    out = project.shell(
        "import json; from aws_ws_async.models import WebSocketSession; "
        f"rows = WebSocketSession.objects.filter(connection_id__in={ids!r}); "
        "print(json.dumps({r.connection_id: [r.connected, r.disconnect_reason] for r in rows}))"
    )
    return dict(json.loads(out.strip().splitlines()[-1]))


async def post_form(
    http: aiohttp.ClientSession, url: str, form: list[tuple[str, str]]
) -> tuple[str, str]:
    """GET ``url`` for a CSRF token, then POST ``form`` to it; (final path, page)."""
    async with http.get(url) as response:
        token = csrf_token(await response.text())
    async with http.post(url, data=[*form, ("csrfmiddlewaretoken", token)]) as response:
        page = await response.text()
        assert response.status == 200, page[:2000]
        return response.url.path, page


async def test_session_operations_over_http(
    e2e_any_server: RunningServer, e2e_project: E2EProject, e2e_endpoint: FaultEndpoint
) -> None:
    """Counts, disconnect, send to the selection (form first) and send to a channel."""
    tag = f"op{os.urandom(4).hex()}"
    channel = f"ops.{tag}"
    rows = make_sessions(e2e_project, tag, channel, 5)
    (pk0, close), (pk1, gone), (pk2, first), (pk3, second), (_, third) = rows
    e2e_endpoint.plan.gone.add(gone)
    changelist = e2e_any_server.url + SESSIONS
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(timeout=DEADLINE, cookie_jar=jar) as http:
        await login(http, e2e_any_server)

        async with http.get(changelist) as response:
            page = await response.text()
        assert re.search(
            rf"subscribed_to={re.escape(channel)}&amp;connected__exact=1\">{re.escape(channel)}"
            r"</a></td><td class=\"count\">5<",
            page,
        ), "the per-channel count is not on the changelist"
        assert f'Ops {tag}</a></td><td class="count">5<' in page

        selection = [("_selected_action", str(pk0)), ("_selected_action", str(pk1))]
        _, page = await post_form(
            http, changelist, [("action", "disconnect_selected"), ("index", "0"), *selection]
        )
        assert admin_messages(page) == [
            ("success", "Disconnect: 2 session(s): 1 closed, 1 already gone, 0 failed.")
        ], e2e_any_server.name
        assert close in e2e_endpoint.deleted

        chosen = [("_selected_action", str(pk2)), ("_selected_action", str(pk3))]
        _, page = await post_form(
            http, changelist, [("action", "send_message_selected"), ("index", "0"), *chosen]
        )
        assert "2 connected of the 2 selected session(s)" in page
        fill = [("action", "send_message_selected"), ("apply", "1"), ("select_across", "0")]
        _, page = await post_form(
            http, changelist, [*fill, *chosen, ("format", "json"), ("message", '{"a": ')]
        )
        assert "Not valid JSON: Expecting value (line 1, column 7)." in html.unescape(page)
        assert first not in e2e_endpoint.calls
        path, page = await post_form(
            http, changelist, [*fill, *chosen, ("format", "json"), ("message", '{"ops": 1}')]
        )
        assert path == SESSIONS
        assert admin_messages(page) == [
            ("success", "Send: 2 session(s): 2 delivered, 0 already gone, 0 failed.")
        ]
        assert e2e_endpoint.received[first] == [b'{"ops":1}']
        assert e2e_endpoint.received[second] == [b'{"ops":1}']
        assert third not in e2e_endpoint.calls

        _, page = await post_form(
            http,
            f"{changelist}send-to-channel/",
            [("channel", channel), ("format", "text"), ("message", "to all")],
        )
        assert admin_messages(page) == [
            (
                "success",
                f"Send to channel '{channel}': 3 session(s): 3 delivered, 0 already gone, "
                "0 failed.",
            )
        ]
        for cid in (first, second, third):
            assert e2e_endpoint.received[cid][-1] == b"to all"

        async with http.get(e2e_any_server.url + CHANGELIST, params={"q": tag}) as response:
            page = await response.text()
        live = re.findall(r'api_gateway__id__exact=\d+&amp;connected__exact=1">(\d+)</a>', page)
        assert live == ["3"], page[:3000]  # 5 connected, 2 disconnected above

    assert session_state(e2e_project, [close, gone, first]) == {
        close: [False, "server"],
        gone: [False, "server"],
        first: [True, ""],
    }


@pytest.fixture(scope="module")
def faces(e2e_project: E2EProject) -> tuple[str, dict[str, str]]:
    """The five roles of ``tests/test_channel_faces.py`` around a room: (room, role -> id).

    first (on room), later (on lobby, then subscribed to room), left (on room, then
    unsubscribed), lobby (lobby only), closed (subscribed to room, disconnected); the
    subscription writes are the application's own. Made once (one shell process) for the
    module: each test sends a message of its own and looks for that message.
    """
    tag = f"fc{os.urandom(4).hex()}"
    room, lobby = f"faces.{tag}", f"faces.{tag}.lobby"
    code = f"""
import json
from aws_ws_async.channels.subscriptions import subscribe, unsubscribe
from aws_ws_async.models import ApiGateway, ChannelSubscription, WebSocketSession
g = ApiGateway.objects.create(api_name={"Faces " + tag!r}, api_id={tag[:10]!r},
    stage_name="ops", api_created=True, deployment_id="d1")
rows = {{}}
for role, first in [("first", {room!r}), ("later", {lobby!r}), ("left", {room!r}),
                    ("lobby", {lobby!r}), ("closed", {lobby!r})]:
    s = WebSocketSession.objects.create(
        connection_id={tag!r} + role + "=", channel_name=first, api_gateway=g)
    ChannelSubscription.objects.create(session=s, channel_name=first, subscribed_at=s.connected_at)
    rows[role] = s
assert subscribe(rows["later"], {room!r}, 10).value == "created"
assert unsubscribe(rows["left"], {room!r})
assert subscribe(rows["closed"], {room!r}, 10).value == "created"
assert rows["closed"].mark_disconnected()
print(json.dumps({{role: s.connection_id for role, s in rows.items()}}))
"""
    return room, dict(e2e_project.shell_json(code))


def received(endpoint: FaultEndpoint, ids: dict[str, str], body: bytes) -> list[str]:
    """The roles that received ``body``."""
    return [role for role, cid in ids.items() if body in endpoint.received[cid]]


async def test_send_to_channel_reaches_later_subscribers_over_http(
    e2e_any_server: RunningServer, e2e_endpoint: FaultEndpoint, faces: tuple[str, dict[str, str]]
) -> None:
    """The admin's form sends to the channel's subscribers, not to its first members."""
    room, ids = faces
    text = f"to the room via {e2e_any_server.name}"
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(timeout=DEADLINE, cookie_jar=jar) as http:
        await login(http, e2e_any_server)
        path, page = await post_form(
            http,
            f"{e2e_any_server.url}{SESSIONS}send-to-channel/",
            [("channel", room), ("format", "text"), ("message", text)],
        )
    assert admin_messages(page) == [
        (
            "success",
            f"Send to channel '{room}': 2 session(s): 2 delivered, 0 already gone, 0 failed.",
        )
    ], e2e_any_server.name
    assert path == SESSIONS
    assert received(e2e_endpoint, ids, text.encode()) == ["first", "later"]


def test_command_channel_reaches_later_subscribers_as_a_subprocess(
    e2e_project: E2EProject, e2e_endpoint: FaultEndpoint, faces: tuple[str, dict[str, str]]
) -> None:
    """``manage.py send_websocket_message --channel`` in its own process, on its own database."""
    room, ids = faces
    out = e2e_project.manage("send_websocket_message", "--channel", room, '{"cmd": 1}')
    assert "Sending to 2 connected session(s)..." in out
    assert received(e2e_endpoint, ids, b'{"cmd":1}') == ["first", "later"]
