"""A bad security setting never means "off": every route and the token view answer 503.

Before this rule a malformed ``gateway_secret`` (too short, wrong type, one bad entry in a list)
resolved to *no* secret and the views accepted forged requests; servers never run system
checks, so nobody was told. Each case below sends requests that would pass on the fallback
value (a valid secret header, a real token) and must be refused, with one ERROR line in the
server log and nothing written.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.test import AsyncClient

from aws_ws_async.models import ConnectionRateLimit, WebSocketSession, WebSocketToken
from tests.fixtures_views import (
    GATEWAY_SECRET,
    Response,
    connect,
    gateway_headers,
    new_connection_id,
    post,
)

pytestmark = pytest.mark.django_db(transaction=True)

CSRF = "B" * 32

#: ``(key, bad value)``: every security key with values of the wrong type, range or format.
BAD_SECURITY_VALUES: list[tuple[str, Any]] = [
    ("gateway_secret", "too-short"),
    ("gateway_secret", [GATEWAY_SECRET, "short"]),
    ("gateway_secret", 12345),
    ("gateway_secret", [GATEWAY_SECRET, None]),
    ("gateway_secret", ""),  # a missing environment variable, not "no secret"
    ("gateway_secret_header", ""),
    ("gateway_secret_header", "X Bad Header"),
    ("gateway_secret_header", 5),
    ("connection_id_header", None),
    ("connection_id_header", "Connection\nid"),
    ("allowed_integration_hosts", ["ok.example.com", 3]),
    ("trusted_proxy_count", -1),
    ("trusted_proxy_count", "1"),
    ("rate_limit_max_attempts", 0),
    ("rate_limit_window_minutes", True),
    ("token_expiry_seconds", "60"),
    ("token_rate_limit_per_minute", 0.5),
    ("ipv6_rate_limit_prefix", 0),
    ("ipv6_rate_limit_prefix", 129),
]


async def all_routes(browser: Any) -> list[Response]:
    """$connect with a real token, then a message and $disconnect, then the token view."""
    cid = new_connection_id()
    responses = [await connect(browser, cid, channel="room")]
    headers = gateway_headers(cid)
    responses.append(await post("/ws/default", headers, '{"handler": "echo"}'))
    responses.append(await post("/ws/disconnect", headers))
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(browser.user)
    client.cookies["csrftoken"] = CSRF
    token = await client.post("/ws-token/", headers={"X-CSRFToken": CSRF})
    responses.append(Response(token.status_code, dict(token.headers), token.content))
    return responses


def assert_refused(responses: list[Response], *, secret_words: tuple[str, ...] = ()) -> None:
    for response in responses:
        assert response.status_code == 503, response.content
        assert response.json() == {"error": "unavailable", "message": "Service unavailable"}
        for word in secret_words:  # the client learns nothing about the configuration
            assert word not in response.content.decode()


def conf_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "aws_ws_async.conf" and r.levelno == logging.ERROR
    ]


@pytest.mark.parametrize(("key", "bad"), BAD_SECURITY_VALUES)
async def test_bad_security_setting_refuses_every_route(
    ws_settings: Any,
    gateway: Any,
    browser: Any,
    caplog: pytest.LogCaptureFixture,
    key: str,
    bad: Any,
) -> None:
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, key: bad}
    # A token fetched before the deploy: the fallback would have let it connect.
    await browser.anew_token()
    caplog.set_level(logging.ERROR, logger="aws_ws_async.conf")
    responses = await all_routes(browser)
    responses += await all_routes(browser)
    assert_refused(responses, secret_words=(key, "short"))
    assert await WebSocketSession.objects.acount() == 0
    assert await ConnectionRateLimit.objects.acount() == 0
    # Only the tokens the test made itself exist: the token view issued none.
    assert await WebSocketToken.objects.acount() == len(browser.tokens)
    errors = conf_errors(caplog)
    assert len(errors) == 1, [r.getMessage() for r in errors]  # once per process, not per request
    assert key in errors[0].getMessage()
    assert errors[0].setting == key  # type: ignore[attr-defined]
    if key == "gateway_secret":
        assert "short" not in errors[0].getMessage()  # positions and lengths, never the value


@pytest.mark.parametrize("container", ["oops", 5, ["gateway_secret"]])
async def test_settings_container_of_the_wrong_type_refuses(
    ws_settings: Any, gateway: Any, browser: Any, caplog: pytest.LogCaptureFixture, container: Any
) -> None:
    """``AWS_WS_ASYNC = "oops"`` hides the gateway secret it was meant to hold."""
    ws_settings.AWS_WS_ASYNC = container
    caplog.set_level(logging.ERROR, logger="aws_ws_async.conf")
    assert_refused(await all_routes(browser))
    assert len(conf_errors(caplog)) == 1


async def test_misspelt_secret_key_refuses(
    ws_settings: Any, gateway: Any, browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``gateway_secrets`` (the attribute's name) instead of ``gateway_secret`` meant no secret."""
    ws_settings.AWS_WS_ASYNC = {"gateway_secrets": [GATEWAY_SECRET], "rate_limit_max_attempts": 99}
    caplog.set_level(logging.ERROR, logger="aws_ws_async.conf")
    assert_refused(await all_routes(browser))
    assert "gateway_secret" in conf_errors(caplog)[0].getMessage()


async def test_ordinary_bad_value_still_falls_back(
    ws_settings: Any, gateway: Any, browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Keys that guard nothing keep the documented fallback: the default, and E002."""
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "last_seen_interval_seconds": "x"}
    response = await connect(browser, new_connection_id())
    assert response.status_code == 200, response.content
    assert conf_errors(caplog) == []


async def test_fixed_setting_serves_again(ws_settings: Any, gateway: Any, browser: Any) -> None:
    good = dict(ws_settings.AWS_WS_ASYNC)
    ws_settings.AWS_WS_ASYNC = {**good, "gateway_secret": "short"}
    assert (await connect(browser, new_connection_id())).status_code == 503
    ws_settings.AWS_WS_ASYNC = good
    assert (await connect(browser, new_connection_id())).status_code == 200
