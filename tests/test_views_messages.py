"""Messages and $disconnect: routing, allow-list, user re-check, permissions, budgets."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from aws_ws_async.hashing import hash_user_auth
from aws_ws_async.models import (
    ApiGateway,
    ChannelAccess,
    ChannelPermission,
    DisconnectReason,
    WebSocketSession,
)
from aws_ws_async.views.background import wait_for_background_tasks
from tests.fixtures_views import (
    API_ID,
    GATEWAY_SECRET,
    EchoView,
    ExplicitView,
    QueryLog,
    connect,
    gateway_headers,
    new_connection_id,
    post,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def open_session(browser: Any, channel: str = "room", path: str = "/ws/connect") -> str:
    cid = new_connection_id()
    response = await connect(browser, cid, channel=channel, path=path)
    assert response.status_code == 200, response.content
    return cid


async def send(cid: str, body: Any, path: str = "/ws/default", **kwargs: Any) -> Any:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return await post(path, gateway_headers(cid, **kwargs), raw)


# --- routing -------------------------------------------------------------------------------


async def test_async_handler_by_action(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser)
    response = await send(cid, {"action": "echo", "x": 1})
    assert response.status_code == 200
    assert response.json() == {
        "body": {"action": "echo", "x": 1},
        "user": browser.user.pk,
        "connection": cid,
    }


async def test_handler_key_wins_over_action(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser)
    response = await send(cid, {"handler": "echo", "action": "boom"})
    assert response.status_code == 200
    assert response.json()["body"]["handler"] == "echo"


async def test_handler_sees_user_channel_and_route(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser, channel="lobby")
    response = await send(cid, {"action": "whoami"}, path="/ws/sendmessage")
    assert response.json() == {"auser": browser.user.pk, "channel": "lobby", "route": "sendmessage"}


def test_debug_mode_keeps_escaped_truncated_notes() -> None:
    quiet = EchoView()
    quiet.debug_message("not kept")
    assert quiet.debug_log == []
    view = EchoView(debug=True)
    view.debug_message("<b>" + "x" * 1000)
    assert view.debug_log[0].startswith("&lt;b&gt;")
    assert len(view.debug_log[0]) == 500


async def test_sync_handler_runs_in_a_thread(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser)
    response = await send(cid, {"action": "sync_echo"})
    assert response.status_code == 200
    assert response.json() == {"sync": True, "connected": 1}


async def test_handler_returning_nothing_is_200_empty(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser)
    response = await send(cid, {"action": "nothing"})
    assert (response.status_code, response.json()) == (200, {})


RESERVED_OR_UNKNOWN = [
    "connect",
    "disconnect",
    "dispatch",
    "post",
    "setup",
    "as_view",
    "static_helper",
    "class_helper",
    "_private",
    "__init__",
    "can_join_channel",
    "send_after_connect",
    "after_connect",
    "handler_error",
    "http_method_not_allowed",
    "options",
    "message",
    "route_request",
    "prop",
    "nope",
    "",
    "ECHO",
    "echo\n",
]


async def test_unknown_or_reserved_handlers_are_404(
    ws_settings: Any, gateway: Any, browser: Any, query_log: QueryLog
) -> None:
    cid = await open_session(browser)
    for name in RESERVED_OR_UNKNOWN:
        with query_log.recording() as queries:
            response = await send(cid, {"action": name})
        assert response.status_code == 404, name
        assert response.json()["error"] == "unknown_handler"
        assert not [q for q in queries if "aws_ws_async" in q], name  # refused before any query


async def test_base_change_channel_needs_listing(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    assert "change_channel" in EchoView.get_allowed_handlers()  # listed in ADDITIONAL_...
    explicit = ExplicitView.get_allowed_handlers()
    # Reserved, private, missing names and non-methods (static/class method, property) dropped.
    assert explicit == frozenset({"echo"})
    cid = await open_session(browser, path="/ws-explicit/connect")
    assert (
        await send(cid, {"action": "sync_echo"}, path="/ws-explicit/default")
    ).status_code == 404
    assert (await send(cid, {"action": "echo"}, path="/ws-explicit/default")).status_code == 200


async def test_base_handlers_can_only_narrow() -> None:
    hidden = type("Hidden", (EchoView,), {"BASE_HANDLERS": set()})
    assert "change_channel" not in hidden.get_allowed_handlers()
    assert "default" not in hidden.get_allowed_handlers()
    widened = type("Widened", (EchoView,), {"BASE_HANDLERS": {"connect", "dispatch", "default"}})
    allowed = widened.get_allowed_handlers()
    assert "default" in allowed
    assert not allowed & {"connect", "dispatch"}


async def test_discovered_handlers() -> None:
    handlers = EchoView.get_allowed_handlers()
    assert {"echo", "sync_echo", "nothing", "boom", "default", "change_channel"} <= handlers
    assert not handlers & {"static_helper", "class_helper", "_private", "after_connect", "connect"}


@pytest.mark.urls("tests.fixtures_views")
async def test_missing_handler_key_is_400_even_with_default(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    """The predecessor refused a message naming no handler (400); so do we, even when the view
    overrides ``default``. Only ``FALLBACK_TO_DEFAULT_HANDLER`` routes it to ``default``."""
    for prefix in ("/ws", "/ws-default"):
        cid = await open_session(browser, path=f"{prefix}/connect")
        response = await send(cid, {"message": "hi"}, path=f"{prefix}/default")
        assert response.status_code == 400, prefix
        assert response.json()["error"] == "handler_missing"
    named = await send(cid, {"action": "default"}, path="/ws-default/default")
    assert named.json() == {"handled_by": "default"}


async def test_listed_non_methods_are_never_called(
    ws_settings: Any, gateway: Any, browser: Any, query_log: QueryLog
) -> None:
    """Listed in ALLOWED_HANDLERS, but a static/class method, a property or absent: 404, and
    the property's getter never runs (the predecessor exposed static methods)."""
    cid = await open_session(browser, path="/ws-explicit/connect")
    reads = ExplicitView.prop_reads
    for name in ("static_helper", "class_helper", "prop", "missing", "connect", "_private"):
        with query_log.recording() as queries:
            response = await send(cid, {"action": name}, path="/ws-explicit/default")
        assert response.status_code == 404, name
        assert not [q for q in queries if "aws_ws_async" in q], name
    assert ExplicitView.prop_reads == reads


async def test_non_string_handler_is_refused(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser)
    for value in (1, None, ["echo"], {"a": 1}):
        assert (await send(cid, {"action": value})).status_code == 404


async def test_fallback_to_default_is_opt_in(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser, path="/ws-fallback/connect")
    response = await send(cid, {"action": "does-not-exist"}, path="/ws-fallback/default")
    assert (response.status_code, response.json()) == (200, {"handled_by": "default"})
    response = await send(cid, {"no": "key"}, path="/ws-fallback/default")
    assert response.json() == {"handled_by": "default"}


async def test_malformed_bodies_are_400(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser)
    bodies = [
        b"",
        b"not json",
        b"[1, 2]",
        b'"echo"',
        b"null",
        b"42",
        b"\xff\xfe",
        b"[" * 50000,
        b'{"a":',
        b'{"action": "echo", "n": ' + b"1" * 5000 + b"}",  # over int's digit limit
    ]
    for body in bodies:
        response = await send(cid, body)
        assert response.status_code == 400, body[:20]
        assert response.json()["error"] == "invalid_body"


async def test_lying_content_length_is_never_a_500(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser)
    body = json.dumps({"action": "echo"}).encode()
    for declared in ("abc", "-5", "999999999", "0", "3", str(len(body) + 10)):
        headers = {**gateway_headers(cid), "Content-Length": declared}
        response = await post("/ws/default", headers, body)
        assert response.status_code in (200, 400, 413), (declared, response.status_code)
    huge = {**gateway_headers(cid), "Content-Length": "999999999"}
    assert (await post("/ws/default", huge, body)).status_code == 413


async def test_trailing_newline_json_is_fine(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser)
    assert (await send(cid, b'{"action": "echo"}\n')).status_code == 200


async def test_oversize_message_is_413(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser)
    big = json.dumps({"action": "echo", "pad": "x" * (128 * 1024)})
    assert (await send(cid, big)).status_code == 413


async def test_handler_exception_is_logged_not_leaked(
    ws_settings: Any, gateway: Any, browser: Any, caplog: Any
) -> None:
    cid = await open_session(browser)
    with caplog.at_level("ERROR", logger="aws_ws_async"):
        response = await send(cid, {"action": "boom"})
    assert response.status_code == 500
    assert "secret internals" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    records = [r for r in caplog.records if r.name == "aws_ws_async.views"]
    assert records
    assert cid in records[0].getMessage()
    assert "route default" in records[0].getMessage()
    # Django's django.request logger (and its AdminEmailHandler) is not asked to log it again.
    assert not [r for r in caplog.records if r.name == "django.request"]


# --- sessions, users, permissions ----------------------------------------------------------


async def test_unknown_connection_is_401(
    ws_settings: Any, gateway: Any, query_log: QueryLog
) -> None:
    assert (await send(new_connection_id(), {"action": "echo"})).status_code == 401
    with query_log.recording() as queries:
        malformed = await send("bad id\n", {"action": "echo"})
    assert malformed.status_code == 401
    assert not [q for q in queries if "aws_ws_async" in q]


async def test_session_of_another_gateway_is_not_found(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser)
    other = await ApiGateway.objects.acreate(api_name="other", api_id="other00001")
    assert (await send(cid, {"action": "echo"}, api_id=other.api_id)).status_code == 401
    assert (await send(cid, {"action": "echo"}, api_id="")).status_code == 400


async def test_disconnected_session_is_401(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser)
    await WebSocketSession.objects.filter(connection_id=cid).aupdate(connected=False)
    assert (await send(cid, {"action": "echo"})).status_code == 401


async def test_inactive_user_closes_the_session(
    ws_settings: Any, gateway: Any, browser: Any, fault_endpoint: Any
) -> None:
    from tests.fixtures_delivery import point_settings_at

    point_settings_at(ws_settings, fault_endpoint.url)
    cid = await open_session(browser)
    await get_user_model()._default_manager.filter(pk=browser.user.pk).aupdate(is_active=False)
    response = await send(cid, {"action": "echo"})
    assert response.status_code == 401
    await wait_for_background_tasks()
    session = await WebSocketSession.objects.aget(connection_id=cid)
    assert not session.connected
    assert session.disconnect_reason == DisconnectReason.USER_INVALID
    assert cid in fault_endpoint.deleted


async def test_password_change_closes_the_session_and_connection(
    ws_settings: Any, gateway: Any, browser: Any, fault_endpoint: Any
) -> None:
    from tests.fixtures_delivery import point_settings_at

    point_settings_at(ws_settings, fault_endpoint.url)
    cid = await open_session(browser)
    user = browser.user
    user.set_password("a-new-password-456")
    await user.asave()
    assert (await send(cid, {"action": "echo"})).status_code == 401
    await wait_for_background_tasks()
    assert cid in fault_endpoint.deleted  # the socket itself was closed (DELETE @connections)
    assert not (await WebSocketSession.objects.aget(connection_id=cid)).connected


async def test_secret_key_rotation_keeps_sessions_alive(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser)
    old = ws_settings.SECRET_KEY
    ws_settings.SECRET_KEY = "rotated-secret-key-for-the-message-path-0123456789"
    ws_settings.SECRET_KEY_FALLBACKS = [old]
    assert (await send(cid, {"action": "echo"})).status_code == 200
    ws_settings.SECRET_KEY_FALLBACKS = []  # the old key is finally dropped: sessions end
    assert (await send(cid, {"action": "echo"})).status_code == 401


async def test_any_of_permissions(ws_settings: Any, gateway: Any, browser: Any) -> None:
    perm = await Permission.objects.aget(codename="view_emailuser")
    await browser.user.user_permissions.aadd(perm)
    cid = await open_session(browser, path="/ws-perm/connect")
    assert (await send(cid, {"action": "echo"}, path="/ws-perm/default")).status_code == 200
    await browser.user.user_permissions.aremove(perm)
    assert (await send(cid, {"action": "echo"}, path="/ws-perm/default")).status_code == 403


async def test_all_of_permissions(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser, path="/ws-allperm/connect")  # not checked on connect here
    view = await Permission.objects.aget(codename="view_emailuser")
    change = await Permission.objects.aget(codename="change_emailuser")
    await browser.user.user_permissions.aadd(view)
    assert (await send(cid, {"action": "echo"}, path="/ws-allperm/default")).status_code == 403
    await browser.user.user_permissions.aadd(change)
    assert (await send(cid, {"action": "echo"}, path="/ws-allperm/default")).status_code == 200


async def test_anonymous_session_messages(ws_settings: Any, gateway: Any) -> None:
    cid = new_connection_id()
    assert (
        await post("/ws-notoken/connect", gateway_headers(cid, connect=True))
    ).status_code == 200
    response = await send(cid, {"action": "echo"}, path="/ws-notoken/default")
    assert response.status_code == 200
    assert response.json()["user"] is None


# --- change_channel ------------------------------------------------------------------------


async def test_change_channel(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser, channel="one")
    response = await send(cid, {"action": "change_channel", "channel": "two"})
    assert (response.status_code, response.json()) == (200, {"channel": "two"})
    assert (await WebSocketSession.objects.aget(connection_id=cid)).channel_name == "two"


async def test_change_channel_invalid(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser, channel="one")
    for channel in ["two\n", "", None, 5, "a b", "x" * 129]:
        response = await send(cid, {"action": "change_channel", "channel": channel})
        assert response.status_code == 400, channel
    assert (await WebSocketSession.objects.aget(connection_id=cid)).channel_name == "one"


async def test_change_channel_denied(ws_settings: Any, gateway: Any, browser: Any) -> None:
    await ChannelPermission.objects.acreate(
        channel_name="admins", access=ChannelAccess.SUPERUSER_ONLY
    )
    cid = await open_session(browser, channel="one")
    assert (await send(cid, {"action": "change_channel", "channel": "admins"})).status_code == 403
    assert (await WebSocketSession.objects.aget(connection_id=cid)).channel_name == "one"


# --- last seen and budgets -----------------------------------------------------------------


async def test_last_seen_written_at_most_once_per_interval(
    ws_settings: Any, gateway: Any, browser: Any, query_log: QueryLog
) -> None:
    cid = await open_session(browser)
    with query_log.recording() as fresh:
        assert (await send(cid, {"action": "nothing"})).status_code == 200
    assert len(fresh) == 1, fresh  # just connected: no write
    old = timezone.now() - timedelta(seconds=120)
    await WebSocketSession.objects.filter(connection_id=cid).aupdate(last_seen_at=old)
    with query_log.recording() as stale:
        assert (await send(cid, {"action": "nothing"})).status_code == 200
    assert len(stale) == 2, stale
    assert stale[1].lstrip().upper().startswith("UPDATE")
    seen = (await WebSocketSession.objects.aget(connection_id=cid)).last_seen_at
    assert seen > old + timedelta(seconds=100)
    with query_log.recording() as again:
        assert (await send(cid, {"action": "nothing"})).status_code == 200
    assert len(again) == 1
    print(
        f"\nmessage queries before the handler: {len(fresh)} (fresh) / {len(stale)} (last_seen due)"
    )


async def test_disconnect_marks_session(
    ws_settings: Any, gateway: Any, browser: Any, query_log: QueryLog
) -> None:
    cid = await open_session(browser)
    with query_log.recording() as queries:
        response = await post("/ws/disconnect", gateway_headers(cid))
    assert response.status_code == 200
    print(f"\n$disconnect queries: {len(queries)}")
    assert len(queries) <= 2, queries
    # The log saw the view's own write: an empty log cannot pass the budget above.
    assert any(
        q.lstrip().upper().startswith("UPDATE") and "aws_ws_async_websocketsession" in q
        for q in queries
    ), queries
    session = await WebSocketSession.objects.aget(connection_id=cid)
    assert not session.connected
    assert session.disconnect_reason == DisconnectReason.CLIENT
    assert session.disconnected_at is not None
    # A repeated (or forged) $disconnect finds nothing connected.
    assert (await post("/ws/disconnect", gateway_headers(cid))).status_code == 401


async def test_disconnect_needs_the_same_gateway(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser)
    response = await post("/ws/disconnect", gateway_headers(cid, api_id="zzz0000000"))
    assert response.status_code == 401
    assert (await WebSocketSession.objects.aget(connection_id=cid)).connected


async def test_disconnect_without_secret_is_refused(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    cid = await open_session(browser)
    assert (await post("/ws/disconnect", gateway_headers(cid, secret=None))).status_code == 403
    assert (await WebSocketSession.objects.aget(connection_id=cid)).connected


async def test_session_rows_written_directly(ws_settings: Any, gateway: Any, user: Any) -> None:
    """A row created by other code (not $connect) is served the same way."""
    cid = new_connection_id()
    await WebSocketSession.objects.acreate(
        connection_id=cid,
        api_gateway=gateway,
        user=user,
        auth_hash=await sync_to_async(hash_user_auth)(user),
    )
    assert (await send(cid, {"action": "echo"})).json()["user"] == user.pk


async def test_pinned_api_id_works_without_a_gateway_row(ws_settings: Any, browser: Any) -> None:
    cid = new_connection_id()
    refused = await connect(browser, cid, path="/ws-pinned/connect")  # default API id
    assert refused.status_code == 403
    response = await connect(browser, cid, path="/ws-pinned/connect", api_id="pinned0001")
    assert response.status_code == 200
    session = await WebSocketSession.objects.aget(connection_id=cid)
    assert session.api_gateway_id is None
    echo = await send(cid, {"action": "echo"}, path="/ws-pinned/default", api_id="pinned0001")
    assert echo.status_code == 200
    other = await send(cid, {"action": "echo"}, path="/ws-pinned/default")
    assert other.status_code == 403


# --- hostile input (audit against the predecessor's checks) -------------------------------


async def test_duplicate_gateway_headers_are_refused(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    """A repeated header reaches Django joined with a comma: it must never match."""
    cid = await open_session(browser)
    body = b'{"action": "echo"}'
    cases = {
        b"connectionid": (cid, 401),
        b"x-amzn-apigateway-api-id": ("abc123def4", 401),
        b"x-ws-gateway-secret": (GATEWAY_SECRET, 403),
        b"content-length": (str(len(body)), 400),
        b"host": ("example.com", 400),
    }
    for name, (value, status) in cases.items():
        headers = {**gateway_headers(cid), "Content-Length": str(len(body))}
        extra = [(name, value.encode())]
        response = await post("/ws/default", headers, body, extra_raw_headers=extra)
        assert response.status_code == status, name
    assert (await WebSocketSession.objects.aget(connection_id=cid)).connected


async def test_odd_bytes_and_ids_never_5xx(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = await open_session(browser)
    body = b'{"action": "echo"}'
    odd = [(b"x-thing", b"\xff\xfe\x80")]
    assert (
        await post("/ws/default", gateway_headers(cid), body, extra_raw_headers=odd)
    ).status_code == 200
    for bad_cid, api_id in (("\xe9\xff", API_ID), (cid, " abc123def4 "), (cid, "abc 123")):
        response = await post("/ws/default", gateway_headers(bad_cid, api_id=api_id), body)
        assert response.status_code == 401, (bad_cid, api_id)
    assert (
        await post("/ws/default", gateway_headers(cid), body, query=b"a=\xff\xfe")
    ).status_code == 400  # refused by Django's ASGI handler itself (UnicodeDecodeError)


async def test_deep_but_parseable_json_is_not_a_500(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    """Nesting past the parser's recursion limit is a 400; a handler ignoring nesting runs.

    60,000 levels (120 KB, under the body limit) exceed the JSON decoder's recursion limit on
    every supported Python (3.13's C decoder still parses 5,000 levels).
    """
    cid = await open_session(browser)
    deep = b'{"action": "nothing", "x": ' + b"[" * 60_000 + b"]" * 60_000 + b"}"
    assert (await send(cid, deep)).status_code == 400
    shallow = b'{"action": "nothing", "x": ' + b"[" * 200 + b"]" * 200 + b"}"
    assert (await send(cid, shallow)).status_code == 200
