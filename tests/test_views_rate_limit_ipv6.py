"""$connect rate limits group IPv6 clients by ``ipv6_rate_limit_prefix``; IPv4 stays per address.

Before: each IPv6 address had its own bucket, so one subscriber (who owns a whole /64) could
rotate source addresses and never be limited per IP.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model

from aws_ws_async.models import ConnectionRateLimit
from tests.fixtures_views import connect, login_browser, new_connection_id

pytestmark = pytest.mark.django_db(transaction=True)

_emails = itertools.count()


async def statuses_from(addresses: list[str]) -> list[int]:
    """One $connect per address, each by a different user (so only the IP limit can bite)."""
    manager = get_user_model()._default_manager
    statuses = []
    for address in addresses:
        user = await sync_to_async(manager.create_user)(
            email=f"v6-{next(_emails)}@example.com", password="pw-123456"
        )
        browser = await sync_to_async(login_browser)(user)
        response = await connect(browser, new_connection_id(), forwarded_for=address)
        statuses.append(response.status_code)
    return statuses


async def test_ipv6_addresses_of_one_64_share_a_bucket(ws_settings: Any, gateway: Any) -> None:
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "rate_limit_max_attempts": 2}
    rotating = [f"2001:db8:aa:bb::{i:x}" for i in range(1, 4)]
    assert await statuses_from(rotating) == [200, 200, 429]
    # Another /64 is another subscriber: its own bucket.
    assert await statuses_from(["2001:db8:aa:bc::1"]) == [200]
    stored = {row.ip_address async for row in ConnectionRateLimit.objects.all()}
    assert stored == {"2001:db8:aa:bb::", "2001:db8:aa:bc::"}


async def test_prefix_is_configurable(ws_settings: Any, gateway: Any) -> None:
    ws_settings.AWS_WS_ASYNC = {
        **ws_settings.AWS_WS_ASYNC,
        "rate_limit_max_attempts": 2,
        "ipv6_rate_limit_prefix": 48,
    }
    # Different /64s inside one /48 now share the bucket.
    assert await statuses_from([f"2001:db8:aa:{i}::1" for i in range(1, 4)]) == [200, 200, 429]


async def test_ipv4_stays_per_address(ws_settings: Any, gateway: Any) -> None:
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "rate_limit_max_attempts": 2}
    assert await statuses_from([f"198.51.100.{i}" for i in range(1, 5)]) == [200] * 4


async def test_ipv4_mapped_ipv6_counts_as_the_ipv4_address(ws_settings: Any, gateway: Any) -> None:
    ws_settings.AWS_WS_ASYNC = {**ws_settings.AWS_WS_ASYNC, "rate_limit_max_attempts": 2}
    same_client = ["198.51.100.9", "::ffff:198.51.100.9", "[::ffff:198.51.100.9]:443"]
    assert await statuses_from(same_client) == [200, 200, 429]
