"""Visible refusals: every refusal logs one WARNING naming route, connection, reason and cause.

Each reason code of ``aws_ws_async.views.reasons`` is provoked through Django's real ASGI handler;
the WARNING on ``aws_ws_async.views`` (message and ``extra`` fields) is checked, and the
``X-Aws-Ws-Async-Reason`` header is present with ``DEBUG=True`` and absent with ``DEBUG=False``
(where the body also says nothing of the cause). The last test runs the emulator in front of a
real uvicorn and reads the reason in the emulator's own log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from asgiref.sync import sync_to_async

from aws_ws_async.emulator import EmulatorConfig, GatewayEmulator
from aws_ws_async.models import ApiGateway, ChannelAccess, ChannelPermission, WebSocketSession
from aws_ws_async.views import reasons
from tests.fixtures_emulator import DjangoServer
from tests.fixtures_views import (
    API_ID,
    Browser,
    Response,
    connect,
    gateway_headers,
    new_connection_id,
    post,
    reset_asgi_app,
)

pytestmark = pytest.mark.django_db(transaction=True)

HEADER = reasons.REASON_HEADER.lower()
Scenario = Callable[[Browser], Awaitable[Response]]


async def message(browser: Browser, body: Any, **kwargs: Any) -> Response:
    cid = new_connection_id()
    response = await connect(browser, cid)
    assert response.status_code == 200, response.content
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await post("/ws/default", gateway_headers(cid, **kwargs), raw)


async def _secret(b: Browser) -> Response:
    return await connect(b, new_connection_id(), secret="wrong-secret-0123456789abcdefghijklmn")


async def _missing_origin(b: Browser) -> Response:
    return await connect(b, new_connection_id(), origin=None)


async def _missing_gateway_header(b: Browser) -> Response:
    headers = gateway_headers(new_connection_id())
    del headers["X-Amzn-Trace-Id"]
    return await post("/ws/default", headers, b"{}")


async def _unknown_gateway(b: Browser) -> Response:
    return await connect(b, new_connection_id(), api_id="zzzzzzzzzz")


async def _too_large(b: Browser) -> Response:
    return await post("/ws/default", gateway_headers(new_connection_id()), b"x" * (200 * 1024))


async def _not_json(b: Browser) -> Response:
    return await message(b, b"[1, 2")


async def _connection_id(b: Browser) -> Response:
    return await connect(b, "bad id!")


async def _origin(b: Browser) -> Response:
    return await connect(b, new_connection_id(), origin="https://evil.test")


async def _channel(b: Browser) -> Response:
    return await connect(b, new_connection_id(), channel="bad%20name")


async def _token(b: Browser) -> Response:
    return await connect(b, new_connection_id(), token="0" * 64)


async def _session_ended(b: Browser) -> Response:
    token = await b.anew_token()
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=b.session_key)
    await sync_to_async(store.delete)()
    return await connect(b, new_connection_id(), token=token)


async def _channel_denied(b: Browser) -> Response:
    await ChannelPermission.objects.acreate(channel_name="staff", access=ChannelAccess.STAFF_ONLY)
    return await connect(b, new_connection_id(), channel="staff")


async def _duplicate(b: Browser) -> Response:
    cid = new_connection_id()
    assert (await connect(b, cid)).status_code == 200
    return await connect(b, cid)


async def _handler_missing(b: Browser) -> Response:
    return await message(b, {"text": "hi"})


async def _unknown_handler(b: Browser) -> Response:
    return await message(b, {"handler": "nope"})


async def _unknown_connection(b: Browser) -> Response:
    return await post("/ws/default", gateway_headers(new_connection_id()), b'{"handler": "echo"}')


async def _disconnect_unknown(b: Browser) -> Response:
    return await post("/ws/disconnect", gateway_headers(new_connection_id()), b"")


async def _user_invalid(b: Browser) -> Response:
    cid = new_connection_id()
    assert (await connect(b, cid)).status_code == 200
    b.user.is_active = False
    await b.user.asave(update_fields=["is_active"])
    return await post("/ws/default", gateway_headers(cid), b'{"handler": "echo"}')


async def _method(b: Browser) -> Response:
    return await post("/ws/default", gateway_headers(new_connection_id()), b"", method="GET")


async def _invalid_channel_change(b: Browser) -> Response:
    return await message(b, {"handler": "change_channel", "channel": "bad name"})


#: (reason, text the cause must contain, status, how to provoke it)
CASES: list[tuple[str, str, int, Scenario]] = [
    (reasons.INVALID_SECRET, "X-Ws-Gateway-Secret does not match", 403, _secret),
    (reasons.MISSING_HEADER, "Origin", 400, _missing_origin),
    (reasons.MISSING_HEADER, "X-Amzn-Trace-Id", 400, _missing_gateway_header),
    (reasons.UNKNOWN_GATEWAY, "zzzzzzzzzz", 403, _unknown_gateway),
    (reasons.PAYLOAD_TOO_LARGE, "MAX_BODY_SIZE", 413, _too_large),
    (reasons.INVALID_BODY, "not JSON", 400, _not_json),
    (reasons.CONNECTION_ID, "malformed", 400, _connection_id),
    (reasons.ORIGIN, "https://evil.test", 403, _origin),
    (reasons.INVALID_CHANNEL, "bad name", 400, _channel),
    (reasons.INVALID_TOKEN, "unknown, expired", 401, _token),
    (reasons.SESSION_ENDED, "browser session has ended", 401, _session_ended),
    (reasons.CHANNEL_DENIED, "staff", 403, _channel_denied),
    (reasons.DUPLICATE, "session row with this connection id", 409, _duplicate),
    (reasons.HANDLER_MISSING, "'handler'", 400, _handler_missing),
    (reasons.UNKNOWN_HANDLER, "'nope'", 404, _unknown_handler),
    (reasons.UNKNOWN_CONNECTION, "no connected session", 401, _unknown_connection),
    (reasons.UNKNOWN_CONNECTION, "no connected session", 401, _disconnect_unknown),
    (reasons.USER_INVALID, "inactive", 401, _user_invalid),
    (reasons.METHOD_NOT_ALLOWED, "GET", 405, _method),
    (reasons.INVALID_CHANNEL, "bad name", 400, _invalid_channel_change),
]


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "aws_ws_async.views" and getattr(r, "reason", None) is not None
    ]


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "production"])
@pytest.mark.parametrize(("reason", "cause", "status", "scenario"), CASES, ids=lambda v: str(v))
async def test_each_refusal_logs_one_warning_and_debug_names_it(
    ws_settings: Any,
    gateway: Any,
    browser: Browser,
    caplog: pytest.LogCaptureFixture,
    debug: bool,
    reason: str,
    cause: str,
    status: int,
    scenario: Scenario,
) -> None:
    ws_settings.DEBUG = debug
    caplog.set_level(logging.WARNING, logger="aws_ws_async.views")
    response = await scenario(browser)
    assert response.status_code == status, response.content
    records = refusals(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    record = records[0]
    assert record.levelno == logging.WARNING
    assert (record.reason, record.status_code) == (reason, status)  # type: ignore[attr-defined]
    assert cause in record.cause  # type: ignore[attr-defined]
    assert reason in record.getMessage()
    assert cause in record.getMessage()
    assert record.route in {"connect", "default", "disconnect"}  # type: ignore[attr-defined]
    if debug:
        assert response.headers[HEADER].split(":", 1)[0] == reason
        assert cause in response.headers[HEADER]
    else:
        assert HEADER not in response.headers
        assert cause.encode() not in response.content


async def test_rate_limited_and_hook_and_permissions(
    ws_settings: Any, gateway: Any, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    """The codes that need a view option or a setting: rate limit, hook, view permissions."""
    ws_settings.DEBUG = True
    caplog.set_level(logging.WARNING, logger="aws_ws_async.views")
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "rate_limit_max_attempts": 1}
    assert (await connect(browser, new_connection_id())).status_code == 200
    limited = await connect(browser, new_connection_id())
    assert limited.status_code == 429
    assert limited.headers[HEADER].startswith(f"{reasons.RATE_LIMITED}:over 1 attempts")
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "rate_limit_max_attempts": 1000}
    hook = await connect(browser, new_connection_id(), path="/ws-hook/connect", channel="blocked")
    assert hook.status_code == 403
    assert hook.headers[HEADER] == f"{reasons.HOOK}:additional_connection_checks refused: " + (
        "This channel is closed"
    )
    denied = await connect(browser, new_connection_id(), path="/ws-perm/connect")
    assert denied.status_code == 403
    assert denied.headers[HEADER].startswith(reasons.PERMISSION_DENIED)
    assert [r.reason for r in refusals(caplog)] == [  # type: ignore[attr-defined]
        reasons.RATE_LIMITED,
        reasons.HOOK,
        reasons.PERMISSION_DENIED,
    ]


async def test_host_refusal_is_reported(
    ws_settings: Any, gateway: Any, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    """Without CommonMiddleware (which refuses a bad Host first) the view's own check reports."""
    ws_settings.DEBUG = True
    ws_settings.MIDDLEWARE = [
        m for m in ws_settings.MIDDLEWARE if m != "django.middleware.common.CommonMiddleware"
    ]
    ws_settings.ALLOWED_HOSTS = ["internal-name.corp.example"]
    reset_asgi_app()
    caplog.set_level(logging.WARNING, logger="aws_ws_async.views")
    try:
        response = await connect(
            browser, new_connection_id(), host="evil.test", origin="https://evil.test"
        )
    finally:
        reset_asgi_app()
    assert response.status_code == 400
    assert response.headers[HEADER] == f"{reasons.HOST}:Host 'evil.test' is not in ALLOWED_HOSTS"
    [record] = refusals(caplog)
    assert record.reason == reasons.HOST  # type: ignore[attr-defined]
    assert "internal-name" not in response.content.decode()


async def test_misconfigured_is_reported(
    ws_settings: Any, gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ws_settings.DEBUG = True
    caplog.set_level(logging.WARNING, logger="aws_ws_async.views")
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "gateway_secret": ""}
    broken = await connect(None, new_connection_id())
    assert broken.status_code == 503
    assert broken.headers[HEADER].startswith(reasons.MISCONFIGURED)
    assert reasons.MISCONFIGURED in [r.reason for r in refusals(caplog)]  # type: ignore[attr-defined]


async def test_token_view_anonymous_is_reported(
    ws_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from django.test import AsyncClient

    ws_settings.DEBUG = True
    caplog.set_level(logging.WARNING, logger="aws_ws_async.views")
    response = await AsyncClient(enforce_csrf_checks=False).post("/ws-token/")
    assert response.status_code == 401
    assert response[reasons.REASON_HEADER] == (
        f"{reasons.AUTHENTICATION_REQUIRED}:no logged-in, active user on the request"
    )
    [record] = refusals(caplog)
    assert (record.route, record.reason) == ("token", reasons.AUTHENTICATION_REQUIRED)  # type: ignore[attr-defined]


def test_every_code_is_documented() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "views.md").read_text()
    missing = sorted(code for code in reasons.ALL_REASONS if f"`{code}`" not in page)
    assert missing == []


def test_cause_is_cleaned_for_logs_and_headers() -> None:
    assert reasons.clean_cause("a\r\nb\x00é") == "a??b??"
    assert len(reasons.clean_cause("x" * 1000)) == reasons.MAX_CAUSE


@pytest.mark.e2e
async def test_emulator_log_line_names_the_reason(
    settings: Any, django_asgi_server: DjangoServer, caplog: pytest.LogCaptureFixture
) -> None:
    """``CONNECT <id> -> 400 missing_header:Origin`` in the emulator's own log (DEBUG backend)."""
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["*"]
    emulator = GatewayEmulator(
        EmulatorConfig(f"{django_asgi_server.url}/ws/", api_id=API_ID, stage="dev")
    )
    await emulator.start()
    try:
        await ApiGateway.objects.acreate(api_name="e2e", api_id=API_ID, stage_name="dev")
        caplog.set_level(logging.INFO, logger="aws_ws_async.emulator")
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(emulator.url)  # aiohttp sends no Origin
        assert info.value.status == 400
    finally:
        await emulator.stop()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("aws_ws_async.emulator")]
    assert any("CONNECT " in line and "-> 400 missing_header:Origin" in line for line in lines), (
        lines
    )
    assert await WebSocketSession.objects.acount() == 0
