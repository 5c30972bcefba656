"""The cluster-wide rate budget: permits from one window per account and Region.

Redis is real (127.0.0.1:6379; .ci/run starts it); the posts go to a FaultEndpoint. The
two-process test with real workers is in tests/test_e2e_workers.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from aws_ws_async.delivery.budget import RateBudget, use_budgets
from aws_ws_async.models import WebSocketSession
from aws_ws_async.scaleout.budgets import cluster_budgets, region_of, send_budgets
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import make_gateway, make_sessions, point_settings_at

REDIS = "redis://127.0.0.1:6379/0"


def busiest_second(starts: list[float]) -> int:
    starts = sorted(starts)
    best, left = 0, 0
    for right, at in enumerate(starts):
        while starts[left] <= at - 1.0:
            left += 1
        best = max(best, right - left + 1)
    return best


def unique_key() -> str:
    return f"test-{time.time_ns()}:us-east-1"


@pytest.fixture
def redis_url() -> str:
    ping = subprocess.run(["redis-cli", "-h", "127.0.0.1", "ping"], capture_output=True)
    if ping.returncode:
        pytest.skip("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
    return REDIS


async def take(budgets: list[RateBudget], count: int, workers: int = 8) -> list[float]:
    """``count`` permits per budget, by ``workers`` coroutines each; when each was granted."""
    granted: list[float] = []

    async def worker(budget: RateBudget, n: int) -> None:
        for _ in range(n):
            await budget.acquire()
            granted.append(time.monotonic())

    await asyncio.gather(*(worker(b, count // workers) for b in budgets for _ in range(workers)))
    return granted


async def test_without_a_store_one_process_is_held_to_the_budget() -> None:
    budget = RateBudget(unique_key(), 200)  # no Redis: the in-process fallback
    granted = await take([budget], 400)
    assert len(granted) == budget.permits == 400
    assert busiest_second(granted) <= 200
    assert max(granted) - min(granted) >= 0.9  # it waited: 400 permits need over a second


async def test_two_holders_of_one_redis_key_share_one_budget(redis_url: str) -> None:
    key = unique_key()  # two budgets with one key: what two worker processes hold
    budgets = [RateBudget(key, 200, redis_url=redis_url) for _ in range(2)]
    try:
        granted = await take(budgets, 200)
    finally:
        for budget in budgets:
            await budget.aclose()
    assert len(granted) == 400
    assert busiest_second(granted) <= 200  # alone, each would take 200 a second
    assert max(granted) - min(granted) >= 0.9


async def test_a_wave_of_429s_anywhere_halves_the_rate_for_every_holder(redis_url: str) -> None:
    key = unique_key()
    seen_it, elsewhere = (RateBudget(key, 1000, redis_url=redis_url) for _ in range(2))
    try:
        assert await elsewhere.current_rate() == 1000
        assert await seen_it.throttled() == pytest.approx(500, rel=0.02)
        assert await seen_it.throttled() == pytest.approx(500, rel=0.02)  # within the cooldown
        elsewhere._rate_read = -1.0  # skip the 0.2 s cache: read Redis now
        lowered = await elsewhere.current_rate()
        assert 500 <= lowered < 520
        await asyncio.sleep(0.5)
        elsewhere._rate_read = -1.0
        recovering = await elsewhere.current_rate()
        assert lowered < recovering < 560  # slowly: 5% of the budget per second
    finally:
        await seen_it.aclose()
        await elsewhere.aclose()


async def test_the_fallback_lowers_its_own_rate_on_a_wave_of_429s() -> None:
    budget = RateBudget(unique_key(), 1000)
    assert await budget.throttled() == 500
    assert 500 <= await budget.current_rate() < 520


def test_a_budget_is_keyed_by_account_and_region(settings: Any) -> None:
    settings.AWS_WS_ASYNC = {"region_name": "eu-west-1", "rate_budget_account": "acct"}
    aws = "https://abc.execute-api.ap-south-1.amazonaws.com/prod"
    assert region_of(aws) == "ap-south-1"
    assert region_of("http://127.0.0.1:9/prod") == "eu-west-1"

    async def keys() -> tuple[str, str, bool]:
        one, other = cluster_budgets(aws), cluster_budgets("https://x.example/prod")
        return one.key, other.key, cluster_budgets(aws) is one

    assert asyncio.run(keys()) == ("acct:ap-south-1", "acct:eu-west-1", True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_async_db_connections")
async def test_asend_message_takes_permits_only_when_the_setting_says_so(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    gateway = await sync_to_async(make_gateway)()
    await sync_to_async(make_sessions)(gateway, 300)
    qs = WebSocketSession.objects.all()

    await qs.asend_message("free")
    assert send_budgets(fault_endpoint.url) is None  # no budget: nothing to take permits from

    point_settings_at(fault_settings, fault_endpoint.url, rate_budget_per_second=100.0)
    fault_settings.AWS_WS_ASYNC = {**fault_settings.AWS_WS_ASYNC, "rate_budget_in_send": True}
    fault_endpoint.reset()
    report = await qs.asend_message("budgeted")
    assert report.delivered_count == 300
    starts = [at for at, _ in fault_endpoint.in_flight_log]
    assert busiest_second(starts) <= 105
    assert max(starts) - min(starts) >= 1.5  # 300 posts at 100/s


async def test_an_engine_under_use_budgets_lowers_the_shared_rate_on_widespread_429s(
    redis_url: str,
) -> None:
    from aws_ws_async.delivery import DeliveryPolicy, deliver
    from aws_ws_async.delivery.memory import InMemoryTransport, Network

    key, net = unique_key(), Network()
    ids = [f"t{i}=" for i in range(200)]
    for connection_id in ids:
        net.script(connection_id, "throttle", times=1)  # every connection's first post: 429
    budget = RateBudget(key, 1000, redis_url=redis_url)
    other = RateBudget(key, 1000, redis_url=redis_url)  # another process's view
    policy = DeliveryPolicy(backoff_base_seconds=0.001, backoff_max_seconds=0.005)
    try:
        with use_budgets(lambda url: budget):
            async with InMemoryTransport("memory://api/stage", network=net) as transport:
                report = await deliver(transport, ids, b"x", policy=policy)
        assert report.delivered_count == report.throttled == 200
        assert budget.permits == 400  # every attempt took a permit, the 429s too
        assert budget.decreases >= 1
        assert await other.current_rate() < 700
    finally:
        await budget.aclose()
        await other.aclose()
