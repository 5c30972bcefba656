"""``$connect``'s thread hops: a view that keeps the default checks after the rate limit runs
them, the spend and the INSERTs in the token's hop (one hop fewer); a view that overrides one
of those hooks keeps two hops, its hook awaited between them. Both run the same statements in
the same order, refuse the same way and never burn a token on a refusal.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission

from aws_ws_async.models import (
    ChannelAccess,
    ChannelPermission,
    ChannelPermissionRule,
    ConnectionRateLimit,
    WebSocketToken,
)
from aws_ws_async.models.tokens import digest_token
from aws_ws_async.views import reasons
from tests.fixtures_views import Browser, QueryLog, connect, new_connection_id

pytestmark = pytest.mark.django_db(transaction=True)


async def used(raw: str) -> bool:
    return (await WebSocketToken.objects.aget(token=digest_token(raw))).used


async def connect_counted(
    browser: Browser, hops: list[str], path: str, channel: str, cid: str | None = None
) -> tuple[int, list[str], str]:
    token = await browser.anew_token()
    hops.clear()
    response = await connect(
        browser, cid or new_connection_id(), path=path, channel=channel, token=token
    )
    return response.status_code, list(hops), token


async def test_default_checks_share_the_tokens_hop(
    ws_settings: Any, gateway: Any, browser: Browser, hops: list[str], query_log: QueryLog
) -> None:
    assert (await connect(browser, new_connection_id())).status_code == 200  # gateway cached
    with query_log.recording() as fused_log:
        status, fused, _ = await connect_counted(browser, hops, "/ws/connect", "room")
    assert status == 200
    assert "read_token" in fused
    assert "spend_and_insert" not in fused
    with query_log.recording() as hooked_log:
        status, hooked, _ = await connect_counted(browser, hops, "/ws-hook/connect", "room")
    assert status == 200
    assert "read_token" in hooked
    assert "spend_and_insert" in hooked
    assert len(fused) == len(hooked) - 1
    # The same statements in the same order on both paths.
    assert [q.split(" WHERE ")[0] for q in fused_log] == [q.split(" WHERE ")[0] for q in hooked_log]


async def test_fused_refusals_spend_nothing(
    ws_settings: Any, gateway: Any, browser: Browser, hops: list[str]
) -> None:
    await ChannelPermission.objects.acreate(channel_name="staff", access=ChannelAccess.STAFF_ONLY)
    status, fused, token = await connect_counted(browser, hops, "/ws/connect", "staff")
    assert status == 403
    assert "spend_and_insert" not in fused
    assert not await used(token)
    status, _, token = await connect_counted(browser, hops, "/ws-strict/connect", "unlisted")
    assert status == 403
    assert not await used(token)
    refused = ConnectionRateLimit.objects.filter(successful=False, reason=reasons.CHANNEL_DENIED)
    assert await refused.acount() == 2


async def test_a_permission_rule_is_read_in_the_fused_hop(
    ws_settings: Any, gateway: Any, browser: Browser, hops: list[str]
) -> None:
    policy = await ChannelPermission.objects.acreate(
        channel_name="ruled", access=ChannelAccess.PERMISSIONS
    )
    rule = await ChannelPermissionRule.objects.acreate(channel_permission=policy)
    permission = await Permission.objects.aget(codename="view_websocketsession")
    await rule.permissions.aadd(permission)
    status, _, token = await connect_counted(browser, hops, "/ws/connect", "ruled")
    assert status == 403
    assert not await used(token)
    await browser.user.user_permissions.aadd(permission)
    status, fused, token = await connect_counted(browser, hops, "/ws/connect", "ruled")
    assert status == 200
    assert "spend_and_insert" not in fused
    assert await used(token)


@pytest.mark.parametrize("path", ["/ws/connect", "/ws-hook/connect"])
async def test_duplicate_connection_id_gives_the_token_back(
    ws_settings: Any, gateway: Any, browser: Browser, hops: list[str], path: str
) -> None:
    cid = new_connection_id()
    assert (await connect_counted(browser, hops, path, "room", cid))[0] == 200
    status, _, token = await connect_counted(browser, hops, path, "room", cid)
    assert status == 409
    assert not await used(token)
