"""$connect: every check, its status code, what is recorded, and the query budget.

Requests go through Django's real ASGI handler with the headers API Gateway's HTTP_PROXY
integration sends (``tests/fixtures_views.py``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from aws_ws_async.models import (
    ApiGateway,
    ChannelAccess,
    ChannelPermission,
    ConnectionRateLimit,
    WebSocketSession,
    WebSocketToken,
)
from aws_ws_async.models.tokens import digest_token
from tests.fixtures_views import (
    API_ID,
    CLIENT_IP,
    GATEWAY_SECRET,
    OLD_GATEWAY_SECRET,
    QueryLog,
    connect,
    gateway_headers,
    login_browser,
    new_connection_id,
    post,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def sessions() -> int:
    return await WebSocketSession.objects.acount()


async def token_used(raw: str) -> bool:
    return (await WebSocketToken.objects.aget(token=digest_token(raw))).used


# --- the happy path -------------------------------------------------------------------------


async def test_connect_with_token_creates_session(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    cid = new_connection_id()
    token = await browser.anew_token()
    response = await connect(browser, cid, channel="room-1", token=token)
    assert response.status_code == 200, response.content
    assert response.json() == {}
    session = await WebSocketSession.objects.select_related("user").aget(connection_id=cid)
    assert session.user.pk == browser.user.pk
    assert session.channel_name == "room-1"
    assert session.api_gateway_id == gateway.pk
    assert session.connected
    assert len(session.session_key_hash) == 64
    assert len(session.auth_hash) == 64
    assert await token_used(token)
    attempt = await ConnectionRateLimit.objects.aget()
    assert attempt.successful
    assert attempt.ip_address == CLIENT_IP
    assert attempt.user_id == browser.user.pk


async def test_default_channel_of_the_gateway(ws_settings: Any, gateway: Any, browser: Any) -> None:
    await ApiGateway.objects.filter(pk=gateway.pk).aupdate(default_channel_name="lobby")
    cid = new_connection_id()
    assert (await connect(browser, cid)).status_code == 200
    assert (await WebSocketSession.objects.aget(connection_id=cid)).channel_name == "lobby"


async def test_invalid_default_channel_is_refused(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    # Written around model validation (update() skips validators): the view validates it too.
    await ApiGateway.objects.filter(pk=gateway.pk).aupdate(default_channel_name="lobby\n")
    response = await connect(browser, new_connection_id())
    assert response.status_code == 400
    assert await sessions() == 0


def statements(log: list[str]) -> list[str]:
    """The log without transaction control, which only SQLite's backend records."""
    control = ("BEGIN", "SAVEPOINT", "RELEASE SAVEPOINT", "COMMIT", "ROLLBACK")
    return [q for q in log if not q.lstrip().upper().startswith(control)]


async def test_query_budget_with_token(
    ws_settings: Any, gateway: Any, browser: Any, query_log: QueryLog
) -> None:
    """<= 8 statements cold (gateway not cached), 7 once the gateway is cached.

    One more than before the token was bound to its live Django session: the session read;
    one more for the first channel's subscription row (issue 13). Transaction control
    (``BEGIN``, savepoints: SQLite logs them, PostgreSQL does not) is not counted.
    """
    tokens = [await browser.anew_token() for _ in range(2)]
    with query_log.recording() as cold:
        response = await connect(browser, new_connection_id(), channel="room", token=tokens[0])
    assert response.status_code == 200
    with query_log.recording() as warm:
        response = await connect(browser, new_connection_id(), channel="room", token=tokens[1])
    assert response.status_code == 200
    cold, warm = statements(cold), statements(warm)
    print(f"\n$connect queries: cold={len(cold)} warm={len(warm)}")
    assert len(cold) <= 8, cold
    assert len(warm) <= 7, warm
    for log in (cold, warm):
        assert any("aws_ws_async_channelsubscription" in q for q in log), log
    # Both logs hold the session INSERT and the Django session read: an empty log cannot pass
    # the budgets above.
    for log in (cold, warm):
        assert any(
            q.lstrip().upper().startswith("INSERT") and "aws_ws_async_websocketsession" in q
            for q in log
        ), log
        assert any("django_session" in q for q in log), log


# --- gateway checks ------------------------------------------------------------------------


async def test_bad_gateway_secret_is_403_without_database_work(
    ws_settings: Any, gateway: Any, browser: Any, query_log: QueryLog
) -> None:
    for secret in (None, "", "wrong-secret-0123456789abcdefghijklmnop", GATEWAY_SECRET + "x"):
        token = await browser.anew_token()
        with query_log.recording() as queries:
            response = await connect(browser, new_connection_id(), token=token, secret=secret)
        assert response.status_code == 403, secret
        assert GATEWAY_SECRET not in response.content.decode()
        # Only the session/auth middleware may touch the database; our view does not.
        assert not [q for q in queries if "aws_ws_async" in q], secret
        assert not await token_used(token)
    assert await ConnectionRateLimit.objects.acount() == 0


async def test_previous_secret_still_accepted_during_rotation(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    response = await connect(browser, new_connection_id(), secret=OLD_GATEWAY_SECRET)
    assert response.status_code == 200


async def test_no_secret_configured_means_no_header_needed(
    settings: Any, gateway: Any, browser: Any
) -> None:
    response = await connect(browser, new_connection_id(), secret=None)
    assert response.status_code == 200


async def test_unknown_or_empty_api_id_never_matches(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    # An unprovisioned row has api_id="" and must not be selected by an empty header.
    await ApiGateway.objects.acreate(api_name="unprovisioned")
    for api_id in ("", "unknown00", "ABC!"):
        response = await connect(browser, new_connection_id(), api_id=api_id)
        assert response.status_code in (400, 403), api_id
    assert await sessions() == 0


async def test_gateway_cache_is_cleared_when_a_gateway_changes(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    assert (await connect(browser, new_connection_id())).status_code == 200
    gateway.api_id = "newid00001"
    await gateway.asave()
    assert (await connect(browser, new_connection_id())).status_code == 403
    assert (await connect(browser, new_connection_id(), api_id="newid00001")).status_code == 200


async def test_gateway_cache_ttl(ws_settings: Any, gateway: Any, browser: Any) -> None:
    """Cached: a QuerySet.update() is not seen until expiry; with TTL 0 it is seen at once."""
    assert (await connect(browser, new_connection_id())).status_code == 200
    await ApiGateway.objects.filter(pk=gateway.pk).aupdate(api_id="moved00001")  # no signal
    assert (await connect(browser, new_connection_id())).status_code == 200  # cached row
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "gateway_cache_seconds": 0}
    assert (await connect(browser, new_connection_id())).status_code == 403
    assert (await connect(browser, new_connection_id(), api_id="moved00001")).status_code == 200


async def test_only_post(ws_settings: Any, gateway: Any, browser: Any) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
        headers = gateway_headers(new_connection_id(), connect=True)
        headers["Cookie"] = browser.cookie()
        token = await browser.anew_token()
        response = await post("/ws/connect", headers, method=method, query=f"ws_token={token}")
        assert response.status_code == 405, method
        assert response.headers["allow"] == "POST"
    assert await sessions() == 0


#: Every header API Gateway sends on every route (the predecessor required the same set,
#: plus nginx's X-Real-Ip, which is not API Gateway's).
GATEWAY_HEADERS = (
    "Host",
    "Content-Length",
    "User-Agent",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Port",
    "X-Amzn-Trace-Id",
    "X-Amzn-Apigateway-Api-Id",
    "Connectionid",
)
HANDSHAKE_HEADERS = ("Origin", "Sec-WebSocket-Key", "Sec-WebSocket-Version")


@pytest.mark.parametrize("header", GATEWAY_HEADERS + HANDSHAKE_HEADERS)
async def test_missing_header_is_400(
    ws_settings: Any, gateway: Any, browser: Any, header: str
) -> None:
    headers = gateway_headers(new_connection_id(), connect=True)
    headers["Cookie"] = browser.cookie()
    headers[header] = ""  # sent empty (Content-Length: not sent at all)
    if header != "Content-Length":
        del headers[header]
    token = await browser.anew_token()
    response = await post("/ws/connect", headers, query=f"ws_token={token}")
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "missing_headers"
    assert header.lower() not in response.content.decode().lower()
    assert not await token_used(token)
    assert await sessions() == 0


@pytest.mark.parametrize("header", GATEWAY_HEADERS)
@pytest.mark.parametrize("route", ["default", "disconnect"])
async def test_missing_gateway_header_on_other_routes(
    ws_settings: Any, gateway: Any, browser: Any, header: str, route: str
) -> None:
    cid = new_connection_id()
    assert (await connect(browser, cid, channel="room")).status_code == 200
    headers = gateway_headers(cid)
    headers[header] = ""
    if header != "Content-Length":
        del headers[header]
    before = await ConnectionRateLimit.objects.acount()
    response = await post(f"/ws/{route}", headers, '{"action": "echo"}')
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "missing_headers"
    session = await WebSocketSession.objects.aget(connection_id=cid)
    assert session.connected
    assert await ConnectionRateLimit.objects.acount() == before


async def test_required_headers_are_configurable(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    """A proxy of yours that strips a header: narrow ``required_headers``; add your own with
    ``additional_required_headers``."""
    from tests.fixtures_views import EchoView

    headers = gateway_headers(new_connection_id(), connect=True)
    headers["Cookie"] = browser.cookie()
    del headers["X-Amzn-Trace-Id"]
    original = EchoView.required_headers
    EchoView.required_headers = [h for h in original if h != "X-Amzn-Trace-Id"]
    EchoView.additional_required_headers = ["X-Real-Ip"]
    try:
        token = await browser.anew_token()
        response = await post("/ws/connect", headers, query=f"ws_token={token}")
        assert response.status_code == 400  # X-Real-Ip missing
        headers["X-Real-Ip"] = CLIENT_IP
        response = await post("/ws/connect", headers, query=f"ws_token={token}")
        assert response.status_code == 200, response.content
    finally:
        EchoView.required_headers = original
        EchoView.additional_required_headers = []


async def test_invalid_connection_id(ws_settings: Any, gateway: Any, browser: Any) -> None:
    for cid in ("", "a b", "abc\n", "x" * 129, "ab$c", "é"):
        headers = gateway_headers(cid, connect=True)
        headers["Cookie"] = browser.cookie()
        if not cid.isascii():
            headers["Connectionid"] = cid.encode().decode("latin1")
        token = await browser.anew_token()
        response = await post("/ws/connect", headers, query=f"ws_token={token}")
        assert response.status_code == 400, cid
    assert await sessions() == 0
    assert await ConnectionRateLimit.objects.filter(reason="connection_id").acount() == 5


async def test_oversize_body_is_413(ws_settings: Any, gateway: Any, browser: Any) -> None:
    headers = gateway_headers(new_connection_id(), connect=True)
    response = await post("/ws/connect", headers, body=b"x" * (128 * 1024 + 1))
    assert response.status_code == 413
    assert await sessions() == 0


# --- Host and Origin -----------------------------------------------------------------------


@pytest.mark.parametrize("common_middleware", [True, False])
async def test_host_not_allowed_does_not_leak_settings(
    ws_settings: Any, gateway: Any, browser: Any, common_middleware: bool
) -> None:
    """CommonMiddleware refuses a bad Host first; without it the view's own check does."""
    from tests.fixtures_views import reset_asgi_app

    if not common_middleware:
        ws_settings.MIDDLEWARE = [
            m for m in ws_settings.MIDDLEWARE if m != "django.middleware.common.CommonMiddleware"
        ]
        reset_asgi_app()
    ws_settings.ALLOWED_HOSTS = ["internal-name.corp.example", ".secret-suffix.example"]
    try:
        response = await connect(
            browser, new_connection_id(), host="evil.test", origin="https://evil.test"
        )
    finally:
        reset_asgi_app()
    assert response.status_code == 400
    body = response.content.decode()
    assert "internal-name" not in body
    assert "secret-suffix" not in body
    assert await sessions() == 0
    if not common_middleware:
        attempt = await ConnectionRateLimit.objects.aget()
        assert not attempt.successful
        assert attempt.reason == "host"


async def test_allowed_hosts_wildcards_work(ws_settings: Any, gateway: Any, browser: Any) -> None:
    for allowed, host in [
        (["*"], "anything.test"),
        ([".example.com"], "ws.example.com"),
        ([".example.com"], "example.com"),
    ]:
        ws_settings.ALLOWED_HOSTS = allowed
        response = await connect(browser, new_connection_id(), host=host, origin=f"https://{host}")
        assert response.status_code == 200, (allowed, host)


async def test_origin_is_strict(ws_settings: Any, gateway: Any, browser: Any) -> None:
    refused = [
        "https://evil.test",
        "https://sub.example.com",  # sub-domains only when enabled
        "https://example.com.evil.test",
        "https://example.com:8443",
        "ftp://example.com",
        "null",
        "https://user@example.com",
        "https://example.com/path",
    ]
    for origin in refused:
        token = await browser.anew_token()
        response = await connect(browser, new_connection_id(), origin=origin, token=token)
        assert response.status_code == 403, origin
        assert not await token_used(token)
    assert await sessions() == 0
    assert await ConnectionRateLimit.objects.filter(reason="origin").acount() == len(refused)


async def test_same_host_origins(ws_settings: Any, gateway: Any, browser: Any) -> None:
    for origin in ("https://example.com", "http://example.com", "https://EXAMPLE.com:443"):
        assert (await connect(browser, new_connection_id(), origin=origin)).status_code == 200


async def test_csrf_trusted_origins_are_trusted(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    ws_settings.CSRF_TRUSTED_ORIGINS = ["https://app.other.test", "https://*.pages.test"]
    for origin, expected in [
        ("https://app.other.test", 200),
        ("http://app.other.test", 403),
        ("https://a.pages.test", 200),
        ("https://pages.test", 403),
    ]:
        response = await connect(browser, new_connection_id(), origin=origin)
        assert response.status_code == expected, origin


async def test_subdomains_when_enabled(ws_settings: Any, gateway: Any, browser: Any) -> None:
    ok = await connect(
        browser, new_connection_id(), origin="https://chat.example.com", path="/ws-sub/connect"
    )
    assert ok.status_code == 200
    trusted = await connect(
        browser, new_connection_id(), origin="https://x.trusted.test", path="/ws-sub/connect"
    )
    assert trusted.status_code == 200
    bad = await connect(
        browser, new_connection_id(), origin="https://example.com.evil.test", path="/ws-sub/connect"
    )
    assert bad.status_code == 403


# --- tokens --------------------------------------------------------------------------------


async def test_token_is_single_use(ws_settings: Any, gateway: Any, browser: Any) -> None:
    token = await browser.anew_token()
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 200
    second = await connect(browser, new_connection_id(), token=token)
    assert second.status_code == 401
    assert await sessions() == 1


async def test_bad_tokens_are_401_and_counted(ws_settings: Any, gateway: Any, browser: Any) -> None:
    bad = ["", "0" * 64, "zz", "A" * 64, "0" * 63 + "%0A"]
    for token in bad:
        response = await connect(browser, new_connection_id(), token=token)
        assert response.status_code == 401, token
    assert await sessions() == 0
    attempts = [a async for a in ConnectionRateLimit.objects.all()]
    assert len(attempts) == len(bad)
    for attempt in attempts:
        assert (attempt.successful, attempt.reason, attempt.ip_address) == (
            False,
            "invalid_token",
            CLIENT_IP,
        )


async def test_token_bound_to_the_browser_session(
    ws_settings: Any, gateway: Any, user: Any
) -> None:
    alice = await sync_to_async(login_browser)(user)
    other = await sync_to_async(login_browser)(user)  # same user, another browser
    token = await alice.anew_token()
    assert (await connect(other, new_connection_id(), token=token)).status_code == 401
    assert not await token_used(token)
    assert (await connect(alice, new_connection_id(), token=token)).status_code == 200


async def test_no_cookie_is_401(ws_settings: Any, gateway: Any, browser: Any) -> None:
    token = await browser.anew_token()
    headers = gateway_headers(new_connection_id(), connect=True)
    response = await post("/ws/connect", headers, query=f"ws_token={token}")
    assert response.status_code == 401


async def test_expired_token(ws_settings: Any, gateway: Any, browser: Any) -> None:
    token = await browser.anew_token()
    await WebSocketToken.objects.aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 401


async def test_inactive_user_cannot_connect(ws_settings: Any, gateway: Any, browser: Any) -> None:
    token = await browser.anew_token()
    await get_user_model()._default_manager.filter(pk=browser.user.pk).aupdate(is_active=False)
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 401


async def test_tokens_survive_secret_key_rotation(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    token = await browser.anew_token()
    old_key = ws_settings.SECRET_KEY
    ws_settings.SECRET_KEY = "a-brand-new-secret-key-after-rotation-0123456789"
    ws_settings.SECRET_KEY_FALLBACKS = [old_key]
    assert (await connect(browser, new_connection_id(), token=token)).status_code == 200
    # A token issued under the new key while the old key is still a fallback: fine.
    token2 = await browser.anew_token()
    assert (await connect(browser, new_connection_id(), token=token2)).status_code == 200
    # Dropping the fallback logs the browser out in Django itself (its session data, signed
    # with the old key, no longer decodes), so a token bound to that session dies with it.
    token3 = await browser.anew_token()
    ws_settings.SECRET_KEY_FALLBACKS = []
    assert (await connect(browser, new_connection_id(), token=token3)).status_code == 401


# --- channels, permissions, hook -----------------------------------------------------------


async def test_invalid_channel_refused_before_token_is_spent(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    bad = ["room%0A", "a%20b", "x" * 129, "%C3%A9", "room/1"]
    for channel in bad:
        token = await browser.anew_token()
        response = await connect(browser, new_connection_id(), channel=channel, token=token)
        assert response.status_code == 400, channel
        assert not await token_used(token)
    assert await ConnectionRateLimit.objects.filter(reason="invalid_channel").acount() == len(bad)


async def test_hostile_connect_queries(ws_settings: Any, gateway: Any, browser: Any) -> None:
    """Uppercase token (tokens are lowercase hex), 129-char or non-UTF-8 channel: 4xx, no
    session, token not spent; api id with spaces: 403."""
    token = await browser.anew_token()
    cases = [
        (f"ws_token={token.upper()}", 401),
        (f"ws_token={token}&channel={'a' * 129}", 400),
        (f"ws_token={token}&channel=%FF%FE", 400),
        (f"ws_token={token}&channel=room%0A", 400),
        (f"ws_token={token}&ws_token=", 401),  # the last value counts (QueryDict)
    ]
    for query, status in cases:
        headers = gateway_headers(new_connection_id(), connect=True)
        headers["Cookie"] = browser.cookie()
        response = await post("/ws/connect", headers, query=query)
        assert response.status_code == status, query
    assert (await connect(browser, new_connection_id(), api_id="abc 123")).status_code == 403
    assert not await token_used(token)
    assert await sessions() == 0


async def test_dotted_channel_names_are_valid(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = new_connection_id()
    assert (await connect(browser, cid, channel="myproject.chat")).status_code == 200


async def test_staff_only_channel(ws_settings: Any, gateway: Any, browser: Any) -> None:
    await ChannelPermission.objects.acreate(channel_name="staff", access=ChannelAccess.STAFF_ONLY)
    token = await browser.anew_token()
    refused = await connect(browser, new_connection_id(), channel="staff", token=token)
    assert refused.status_code == 403
    assert not await token_used(token)  # refusals never burn the token
    await get_user_model()._default_manager.filter(pk=browser.user.pk).aupdate(is_staff=True)
    ok = await connect(browser, new_connection_id(), channel="staff", token=token)
    assert ok.status_code == 200
    assert await token_used(token)


async def test_permission_rule_channel(ws_settings: Any, gateway: Any, browser: Any) -> None:
    policy = await ChannelPermission.objects.acreate(
        channel_name="vip", access=ChannelAccess.PERMISSIONS
    )
    rule = await policy.rules.acreate(description="can view users")
    perm = await Permission.objects.aget(codename="view_emailuser")
    await rule.permissions.aadd(perm)
    assert (await connect(browser, new_connection_id(), channel="vip")).status_code == 403
    await browser.user.user_permissions.aadd(perm)
    fresh = await get_user_model()._default_manager.aget(pk=browser.user.pk)
    browser.user = fresh
    assert (await connect(browser, new_connection_id(), channel="vip")).status_code == 200


async def test_unlisted_channels_closed_when_configured(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    response = await connect(
        browser, new_connection_id(), channel="random", path="/ws-strict/connect"
    )
    assert response.status_code == 403
    await ChannelPermission.objects.acreate(channel_name="open", access=ChannelAccess.ALLOW_ALL)
    response = await connect(
        browser, new_connection_id(), channel="open", path="/ws-strict/connect"
    )
    assert response.status_code == 200


async def test_view_permissions_checked_on_connect(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    response = await connect(browser, new_connection_id(), path="/ws-perm/connect")
    assert response.status_code == 403
    assert (await ConnectionRateLimit.objects.aget()).reason == "permission_denied"
    perm = await Permission.objects.aget(codename="change_emailuser")
    await browser.user.user_permissions.aadd(perm)
    assert (await connect(browser, new_connection_id(), path="/ws-perm/connect")).status_code == 200


async def test_additional_connection_checks_hook(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    refused = await connect(
        browser, new_connection_id(), channel="blocked", path="/ws-hook/connect"
    )
    assert refused.status_code == 403
    assert refused.json()["message"] == "This channel is closed"
    ok = await connect(browser, new_connection_id(), channel="open", path="/ws-hook/connect")
    assert ok.status_code == 200


async def test_duplicate_connection_id_is_409(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cid = new_connection_id()
    assert (await connect(browser, cid)).status_code == 200
    again = await connect(browser, cid)
    assert again.status_code == 409
    assert await sessions() == 1
    assert (await ConnectionRateLimit.objects.filter(successful=False).aget()).reason == "duplicate"


async def test_user_agent_check_is_optional(ws_settings: Any, gateway: Any, browser: Any) -> None:
    from tests.fixtures_views import EchoView

    headers = gateway_headers(new_connection_id(), connect=True)
    headers["User-Agent"] = "curl/8.0"
    headers["Cookie"] = browser.cookie()
    token = await browser.anew_token()
    assert (await post("/ws/connect", headers, query=f"ws_token={token}")).status_code == 200
    EchoView.CHECK_CONNECT_USERAGENT = True
    try:
        headers["Connectionid"] = new_connection_id()
        token = await browser.anew_token()
        assert (await post("/ws/connect", headers, query=f"ws_token={token}")).status_code == 400
        headers["User-Agent"] = f"AmazonAPIGateway_{API_ID}"
        headers["Connectionid"] = new_connection_id()
        assert (await post("/ws/connect", headers, query=f"ws_token={token}")).status_code == 200
    finally:
        EchoView.CHECK_CONNECT_USERAGENT = False


# --- rate limit ----------------------------------------------------------------------------


async def test_rate_limit_counts_refused_attempts_and_answers_429(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "rate_limit_max_attempts": 3}
    for _ in range(3):  # refused attempts (bad origin) weigh on the limit too
        assert (
            await connect(browser, new_connection_id(), origin="https://evil.test")
        ).status_code == 403
    token = await browser.anew_token()
    response = await connect(browser, new_connection_id(), token=token)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"
    assert not await token_used(token)  # refused before spending: the browser may retry later
    assert await sessions() == 0
    assert await ConnectionRateLimit.objects.acount() == 4


async def test_rate_limit_per_user_across_ips(ws_settings: Any, gateway: Any, browser: Any) -> None:
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "rate_limit_max_attempts": 2}
    statuses = [
        (await connect(browser, new_connection_id(), forwarded_for=f"198.51.100.{i}")).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]


async def test_rate_limit_per_ip_across_users(ws_settings: Any, gateway: Any) -> None:
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "rate_limit_max_attempts": 2}
    manager = get_user_model()._default_manager
    statuses = []
    for i in range(3):
        user = await sync_to_async(manager.create_user)(
            email=f"u{i}@example.com", password="pw-123456"
        )
        browser = await sync_to_async(login_browser)(user)
        statuses.append((await connect(browser, new_connection_id())).status_code)
    assert statuses == [200, 200, 429]


async def test_client_ip_from_forwarded_for(ws_settings: Any, gateway: Any, browser: Any) -> None:
    cases = [
        ("6.6.6.6, 203.0.113.7", 0, "203.0.113.7"),  # left-most is client-controlled
        ("6.6.6.6, 203.0.113.7, 10.0.0.2", 1, "203.0.113.7"),  # one ALB of ours
        ("not-an-ip", 0, None),  # no IP bucket, never 0.0.0.0
        ("203.0.113.7", 1, None),  # fewer hops than trusted proxies
    ]
    for forwarded_for, proxies, expected in cases:
        ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "trusted_proxy_count": proxies}
        cid = new_connection_id()
        assert (await connect(browser, cid, forwarded_for=forwarded_for)).status_code == 200
        attempt = await ConnectionRateLimit.objects.order_by("-pk").afirst()
        assert attempt is not None
        assert attempt.ip_address == expected, forwarded_for


# --- without tokens, welcome message -------------------------------------------------------


async def test_no_token_view_uses_the_cookie_session(
    ws_settings: Any, gateway: Any, browser: Any
) -> None:
    headers = gateway_headers(new_connection_id(), connect=True)
    headers["Cookie"] = browser.cookie()
    assert (await post("/ws-notoken/connect", headers)).status_code == 200
    session = await WebSocketSession.objects.aget(connection_id=headers["Connectionid"])
    assert session.user_id == browser.user.pk
    anonymous = gateway_headers(new_connection_id(), connect=True)
    assert (await post("/ws-notoken/connect", anonymous)).status_code == 200
    assert (
        await WebSocketSession.objects.aget(connection_id=anonymous["Connectionid"])
    ).user_id is None


async def test_welcome_message_waits_for_the_socket_to_open(
    ws_settings: Any, gateway: Any, browser: Any, fault_endpoint: Any
) -> None:
    """The emulated @connections answers 410 while $connect runs; the welcome still arrives."""
    import asyncio

    from aws_ws_async.views.background import wait_for_background_tasks
    from tests.fixtures_delivery import point_settings_at

    point_settings_at(ws_settings, fault_endpoint.url, welcome_retry_seconds=5.0)
    cid = new_connection_id()
    fault_endpoint.plan.gone.add(cid)  # API Gateway: "not connected yet"
    response = await connect(browser, cid, channel="welcome")
    assert response.status_code == 200
    for _ in range(100):
        if fault_endpoint.calls[cid]:
            break
        await asyncio.sleep(0.02)
    assert fault_endpoint.calls[cid] >= 1
    assert not fault_endpoint.received[cid]
    fault_endpoint.plan.gone.discard(cid)  # the handshake completed
    await wait_for_background_tasks()
    assert len(fault_endpoint.received[cid]) == 1
    assert b'"welcome"' in fault_endpoint.received[cid][0]
    assert (await WebSocketSession.objects.aget(connection_id=cid)).connected
