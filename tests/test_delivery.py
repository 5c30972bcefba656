"""The delivery engine against the fault-injecting endpoint (no database involved)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aws_ws_async import aws
from aws_ws_async.delivery import (
    AdaptiveLimiter,
    AiobotocoreTransport,
    DeliveryPolicy,
    Engine,
    Outcome,
    Verdict,
    classify,
    deliver,
)
from aws_ws_async.testing import FaultEndpoint

PAYLOAD = b'{"hello":"world"}'


def policy(**kwargs: Any) -> DeliveryPolicy:
    base: dict[str, Any] = {
        "max_concurrency": 8,
        "max_throttle_retries": 6,
        "max_transient_retries": 2,
        "backoff_base_seconds": 0.001,
        "backoff_max_seconds": 0.005,
    }
    base.update(kwargs)
    return DeliveryPolicy(**base)


@pytest.fixture(params=["direct", "send", "standard"])
async def transport(request: Any, fault_settings: Any, fault_endpoint: FaultEndpoint) -> Any:
    """The three request paths: the client's aiohttp session directly, aiobotocore's
    ``http_session.send``, and plain ``client.post_to_connection``."""
    client = await aws.get_management_client(fault_endpoint.url)
    mode = request.param
    t = AiobotocoreTransport(client, fast=mode != "standard", direct=mode == "direct")
    assert t.fast is (mode != "standard")
    assert getattr(t, "_direct", False) is (mode == "direct")
    return t


def ids(n: int, prefix: str = "c") -> list[str]:
    return [f"{prefix}{i:04d}=" for i in range(n)]


async def test_every_recipient_gets_the_payload_once(
    transport: Any, fault_endpoint: FaultEndpoint
) -> None:
    recipients = ids(40)
    report = await deliver(transport, recipients, PAYLOAD, policy=policy())
    assert sorted(report.delivered) == recipients
    assert report.delivered_count == 40
    assert not report.gone
    assert not report.failed
    assert report.retries == 0
    assert dict(fault_endpoint.received.items()) == {cid: [PAYLOAD] for cid in recipients}


@pytest.mark.parametrize("bare", [False, True], ids=["typed", "bare"])
async def test_gone_ids_are_reported_gone(
    transport: Any, fault_endpoint: FaultEndpoint, bare: bool
) -> None:
    recipients = ids(20)
    gone = set(recipients[::5])
    fault_endpoint.plan.gone = gone
    fault_endpoint.plan.bare = bare
    seen: list[str] = []
    report = await deliver(transport, recipients, PAYLOAD, policy=policy(), on_gone=seen.append)
    assert set(report.gone) == gone == set(seen)
    assert sorted(report.delivered) == sorted(set(recipients) - gone)
    assert not report.failed
    assert report.retries == 0
    assert all(fault_endpoint.calls[cid] == 1 for cid in gone)  # 410 is never retried


@pytest.mark.parametrize("bare", [False, True], ids=["typed", "bare"])
async def test_throttle_bursts_are_retried(
    transport: Any, fault_endpoint: FaultEndpoint, bare: bool
) -> None:
    recipients = ids(12)
    throttled = set(recipients[:4])
    fault_endpoint.plan.throttle_first = 2
    fault_endpoint.plan.throttle_ids = throttled
    fault_endpoint.plan.bare = bare
    report = await deliver(transport, recipients, PAYLOAD, policy=policy())
    assert sorted(report.delivered) == recipients
    assert not report.failed
    assert report.retries == 8
    assert report.throttled == 8
    assert all(fault_endpoint.calls[cid] == 3 for cid in throttled)
    assert all(fault_endpoint.received[cid] == [PAYLOAD] for cid in recipients)


async def test_throttle_gives_up_after_the_per_connection_cap(
    transport: Any, fault_endpoint: FaultEndpoint
) -> None:
    fault_endpoint.plan.throttle_first = 100
    fault_endpoint.plan.throttle_ids = {"slow="}
    report = await deliver(
        transport, ["slow=", "ok="], PAYLOAD, policy=policy(max_throttle_retries=3)
    )
    assert report.delivered == ["ok="]
    [failure] = report.failed
    assert (failure.connection_id, failure.reason, failure.status) == ("slow=", "throttled", 429)
    assert failure.attempts == 4
    assert fault_endpoint.calls["slow="] == 4


async def test_widespread_throttling_lowers_concurrency(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    fault_endpoint.plan.latency = 0.005
    fault_endpoint.plan.max_in_flight = 4  # an account-wide throttle
    client = await aws.get_management_client(fault_endpoint.url)
    recipients = ids(400)
    limiter = AdaptiveLimiter(32)
    report = await deliver(
        AiobotocoreTransport(client),
        recipients,
        PAYLOAD,
        policy=policy(max_concurrency=32, max_throttle_retries=30),
        limiter=limiter,
    )
    assert sorted(report.delivered) == recipients
    assert not report.failed
    assert report.throttled > 0
    assert limiter.decreases >= 1
    assert report.lowest_concurrency <= 8
    # After the first halvings, the endpoint never again sees the initial 32 in flight.
    late = fault_endpoint.in_flight_log[len(fault_endpoint.in_flight_log) // 2 :]
    assert max(n for _, n in late) < 32


async def test_one_slow_client_does_not_lower_concurrency(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    fault_endpoint.plan.throttle_first = 6
    fault_endpoint.plan.throttle_ids = {"c0000="}
    client = await aws.get_management_client(fault_endpoint.url)
    limiter = AdaptiveLimiter(8)
    report = await deliver(
        AiobotocoreTransport(client), ids(50), PAYLOAD, policy=policy(), limiter=limiter
    )
    assert report.delivered_count == 50
    assert report.throttled == 6
    assert limiter.decreases == 0
    assert report.lowest_concurrency == 8


@pytest.mark.parametrize("bare", [False, True], ids=["typed", "bare"])
async def test_server_errors_are_retried_then_fail_with_reason(
    transport: Any, fault_endpoint: FaultEndpoint, bare: bool
) -> None:
    fault_endpoint.plan.bare = bare
    fault_endpoint.plan.server_error_first = 2
    fault_endpoint.plan.server_error_ids = {"flaky="}
    report = await deliver(transport, ["flaky="], PAYLOAD, policy=policy())
    assert report.delivered == ["flaky="]
    assert report.retries == 2

    fault_endpoint.plan.server_error_first = 100
    fault_endpoint.plan.server_error_ids = {"down="}
    fault_endpoint.plan.server_error_status = 502
    report = await deliver(transport, ["down="], PAYLOAD, policy=policy())
    [failure] = report.failed
    assert (failure.reason, failure.status, failure.attempts) == ("server_error", 502, 3)
    assert report.retries == 2
    assert fault_endpoint.calls["down="] == 3


async def test_connection_resets_are_retried(transport: Any, fault_endpoint: FaultEndpoint) -> None:
    fault_endpoint.plan.reset_first = 1
    fault_endpoint.plan.reset_ids = {"r1=", "r2="}
    report = await deliver(transport, ["r1=", "r2=", "ok="], PAYLOAD, policy=policy())
    assert sorted(report.delivered) == ["ok=", "r1=", "r2="]
    assert report.retries == 2
    assert fault_endpoint.received["r1="] == [PAYLOAD]

    fault_endpoint.plan.reset_first = 100
    fault_endpoint.plan.reset_ids = {"dead="}
    report = await deliver(transport, ["dead="], PAYLOAD, policy=policy())
    assert [(f.reason, f.attempts) for f in report.failed] == [("connection_error", 3)]


@pytest.mark.parametrize("mode", ["direct", "send", "standard"])
async def test_timeouts_are_retried_then_fail(
    settings: Any, fault_endpoint: FaultEndpoint, mode: str
) -> None:
    from tests.fixtures_delivery import point_settings_at

    point_settings_at(settings, fault_endpoint.url, read_timeout_seconds=0.3)
    client = await aws.get_management_client(fault_endpoint.url)
    transport = AiobotocoreTransport(client, fast=mode != "standard", direct=mode == "direct")
    fault_endpoint.plan.hang_ids = {"hang="}
    fault_endpoint.plan.hang_seconds = 0.8
    report = await deliver(
        transport, ["hang=", "ok="], PAYLOAD, policy=policy(max_transient_retries=1)
    )
    assert report.delivered == ["ok="]
    [failure] = report.failed
    assert (failure.connection_id, failure.reason, failure.attempts) == ("hang=", "timeout", 2)


@pytest.mark.parametrize(
    ("status", "reason"),
    [(403, "forbidden"), (413, "payload_too_large"), (400, "bad_request")],
)
@pytest.mark.parametrize("bare", [False, True], ids=["typed", "bare"])
async def test_client_errors_fail_at_once(
    transport: Any, fault_endpoint: FaultEndpoint, status: int, reason: str, bare: bool
) -> None:
    fault_endpoint.plan.bare = bare
    fault_endpoint.plan.status_for = {"bad=": status}
    report = await deliver(transport, ["bad=", "ok="], PAYLOAD, policy=policy())
    assert report.delivered == ["ok="]
    assert report.retries == 0
    [failure] = report.failed
    assert (failure.connection_id, failure.reason, failure.status) == ("bad=", reason, status)
    assert failure.attempts == 1
    assert fault_endpoint.calls["bad="] == 1


async def test_gone_retry_window_waits_for_connect_to_finish(
    transport: Any, fault_endpoint: FaultEndpoint
) -> None:
    fault_endpoint.plan.gone_for_seconds = {"new=": 0.15}
    report = await deliver(
        transport,
        ["new="],
        PAYLOAD,
        policy=policy(gone_retry_seconds=3.0, backoff_base_seconds=0.02),
    )
    assert report.delivered == ["new="]
    assert report.retries >= 1
    assert fault_endpoint.received["new="] == [PAYLOAD]

    fault_endpoint.plan.gone = {"dead="}
    report = await deliver(
        transport,
        ["dead="],
        PAYLOAD,
        policy=policy(gone_retry_seconds=0.1, backoff_base_seconds=0.02),
    )
    assert report.gone == ["dead="]
    assert fault_endpoint.calls["dead="] >= 2


async def test_delete_closes_and_treats_410_as_already_gone(
    transport: Any, fault_endpoint: FaultEndpoint
) -> None:
    fault_endpoint.plan.gone = {"old="}
    report = await Engine(transport, policy=policy()).delete(["live=", "old="])
    assert report.delivered == ["live="]
    assert report.gone == ["old="]
    assert fault_endpoint.deleted == ["live="]


async def test_workers_pull_lazily_from_an_async_iterable(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    """N recipients never become N tasks: tasks stay bounded by the concurrency."""
    fault_endpoint.plan.latency = 0.002
    client = await aws.get_management_client(fault_endpoint.url)
    peak_tasks = 0
    pulled = 0

    async def recipients() -> AsyncIterator[str]:
        nonlocal peak_tasks, pulled
        for cid in ids(300):
            pulled += 1
            peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
            yield cid

    report = await deliver(
        AiobotocoreTransport(client), recipients(), PAYLOAD, policy=policy(max_concurrency=10)
    )
    assert report.delivered_count == 300
    assert pulled == 300
    # 10 workers, the endpoint's handler task per request in flight (it shares this loop) and
    # a few fixed tasks: bounded by the concurrency, nowhere near one task per recipient.
    assert peak_tasks <= 3 * 10 + 5
    assert fault_endpoint.max_in_flight_seen <= 10


async def test_collect_delivered_off_keeps_counts_only(
    transport: Any, fault_endpoint: FaultEndpoint
) -> None:
    report = await deliver(transport, ids(10), PAYLOAD, policy=policy(collect_delivered=False))
    assert report.delivered == []
    assert report.delivered_count == 10
    assert report.total == 10


def test_classification_uses_status_and_error_type() -> None:
    assert classify(Outcome(200)) is Verdict.DELIVERED
    assert classify(Outcome(204)) is Verdict.DELIVERED
    assert classify(Outcome(410)) is Verdict.GONE
    assert classify(Outcome(429)) is Verdict.THROTTLED
    assert classify(Outcome(400, "LimitExceededException")) is Verdict.THROTTLED
    assert classify(Outcome(400, "GoneException")) is Verdict.GONE
    assert classify(Outcome(503)) is Verdict.TRANSIENT
    assert classify(Outcome(0, "timeout")) is Verdict.TRANSIENT
    assert classify(Outcome(403)) is Verdict.FAILED
    assert classify(Outcome(413)) is Verdict.FAILED
    assert classify(Outcome(404)) is Verdict.FAILED


async def test_limiter_never_exceeds_its_bound() -> None:
    limiter = AdaptiveLimiter(3)
    running = peak = 0

    async def job() -> None:
        nonlocal running, peak
        await limiter.acquire()
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        limiter.release()

    await asyncio.gather(*(job() for _ in range(30)))
    assert peak == 3
    assert limiter.in_flight == 0


async def test_limiter_cancelled_waiter_does_not_leak_a_slot() -> None:
    limiter = AdaptiveLimiter(1)
    await limiter.acquire()
    waiter = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter.release()
    await asyncio.wait_for(limiter.acquire(), 1)
    assert limiter.in_flight == 1


def test_limiter_aimd() -> None:
    now = [0.0]
    limiter = AdaptiveLimiter(20, clock=lambda: now[0])
    for _ in range(10):
        limiter.record_throttle("same", 0.01)
    assert limiter.limit == 20  # one connection throttled is not an account throttle
    for cid in "abc":
        limiter.record_throttle(cid, 0.01)
    assert limiter.limit == 10
    assert limiter.decreases == 1
    for _ in range(200):
        limiter.record_success(0.01)
    assert limiter.limit == 20  # creeps back to the ceiling, never beyond


@pytest.mark.parametrize(
    ("endpoint", "connection_id", "method", "body", "token"),
    [
        (
            "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
            "L0SM9cOFvHcCIhw=",
            "POST",
            b'{"a":1}',
            None,
        ),
        ("http://127.0.0.1:8123", "a b/c~d=", "POST", "é".encode(), "session-token"),
        ("https://ws.example.com:8443/v1/", "x", "DELETE", None, None),
        ("https://ws.example.com/", "ID_-9", "POST", b"", "tok"),
    ],
)
def test_connections_signer_matches_botocore(
    endpoint: str, connection_id: str, method: str, body: bytes | None, token: str | None
) -> None:
    """Our specialised signer must produce exactly botocore's SigV4 for the same request."""
    from urllib.parse import quote

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from aws_ws_async.delivery.sigv4 import ConnectionsSigner

    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    amz_date = "20261122T013000Z"
    signer = ConnectionsSigner(endpoint, "eu-west-1")
    quoted = quote(connection_id, safe="")
    ours = signer.sign(method, quoted, body, credentials.get_frozen_credentials(), amz_date)

    request = AWSRequest(method=method, url=signer.url(quoted), data=body)
    request.context["timestamp"] = amz_date
    request.headers["X-Amz-Date"] = amz_date
    if token:
        request.headers["X-Amz-Security-Token"] = token
    auth = SigV4Auth(credentials, "execute-api", "eu-west-1")
    canonical = auth.canonical_request(request)
    signature = auth.signature(auth.string_to_sign(request, canonical), request)
    headers = auth.headers_to_sign(request)
    expected = (
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{auth.credential_scope(request)}, "
        f"SignedHeaders={auth.signed_headers(headers)}, Signature={signature}"
    )
    assert ours["Authorization"] == expected
    assert ours["X-Amz-Date"] == amz_date
    assert ours.get("X-Amz-Security-Token") == token


async def test_global_rate_limit_is_absorbed_by_retries(
    transport: Any, fault_endpoint: FaultEndpoint
) -> None:
    fault_endpoint.plan.rate_limit = 2000.0
    fault_endpoint.plan.rate_burst = 5
    recipients = ids(60)
    report = await deliver(
        transport,
        recipients,
        PAYLOAD,
        policy=policy(max_concurrency=20, max_throttle_retries=30, backoff_max_seconds=0.02),
    )
    assert sorted(report.delivered) == recipients
    assert not report.failed
    assert report.throttled > 0
    assert report.retries == report.throttled
    assert all(fault_endpoint.received[cid] == [PAYLOAD] for cid in recipients)


async def test_fault_endpoint_answers_like_api_gateway(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    client = await aws.get_management_client(fault_endpoint.url)
    info = await client.get_connection(ConnectionId="abc=")
    assert info["Identity"]["SourceIp"] == "127.0.0.1"
    assert info["ResponseMetadata"]["HTTPStatusCode"] == 200
    deleted = await client.delete_connection(ConnectionId="abc=")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    fault_endpoint.plan.gone = {"gone="}
    with pytest.raises(client.exceptions.GoneException) as typed:
        await client.post_to_connection(ConnectionId="gone=", Data=b"x")
    assert typed.value.response["Error"]["Message"] == "Connection is gone"
    fault_endpoint.plan.bare = True
    with pytest.raises(client.exceptions.ClientError) as bare:
        await client.post_to_connection(ConnectionId="gone=", Data=b"x")
    assert not isinstance(bare.value, client.exceptions.GoneException)
    assert bare.value.response["Error"]["Code"] == "410"


async def test_latency_endpoint_serves_posts_and_deletes(settings: Any) -> None:
    from aws_ws_async.testing.latency_endpoint import LatencyEndpoint
    from tests.fixtures_delivery import point_settings_at

    endpoint = LatencyEndpoint(0.005)
    await endpoint.start()
    try:
        point_settings_at(settings, endpoint.url)
        client = await aws.get_management_client(endpoint.url)
        transport = AiobotocoreTransport(client)
        report = await deliver(transport, ids(30), PAYLOAD, policy=policy())
        assert report.delivered_count == 30
        assert (await transport.delete("x=")).status == 204
        assert endpoint.requests == 31
    finally:
        await endpoint.stop()


async def test_fast_path_requests_the_same_url_as_botocore(
    settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    from tests.fixtures_delivery import point_settings_at

    url = fault_endpoint.url + "/prod"
    point_settings_at(settings, url)
    client = await aws.get_management_client(url)
    odd = "a b/c~d=é"
    paths = []
    for fast in (False, True):
        assert (await AiobotocoreTransport(client, fast=fast).post(odd, b"x")).status == 200
        paths.append(fault_endpoint.raw_path_of[odd])
    assert paths[0] == paths[1] == "/prod/@connections/a%20b%2Fc~d%3D%C3%A9"


async def test_a_trickling_peer_fails_as_timeout_within_the_attempt_deadline(
    transport: Any, fault_endpoint: FaultEndpoint
) -> None:
    """Headers at once, then one byte every 0.2 s: no single read times out (2 s), but each
    attempt ends at its total deadline (0.4 s), on every request path."""
    fault_endpoint.plan.trickle_ids = {"slow="}
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(20):  # without a total deadline: 40 s per attempt
        report = await deliver(
            transport,
            ["slow=", "ok="],
            PAYLOAD,
            policy=policy(max_transient_retries=1, attempt_timeout_seconds=0.4),
        )
    elapsed = asyncio.get_running_loop().time() - started
    assert report.delivered == ["ok="]
    [failure] = report.failed
    assert (failure.connection_id, failure.reason, failure.attempts) == ("slow=", "timeout", 2)
    assert elapsed < 5, f"two attempts of 0.4 s took {elapsed:.1f}s"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fast_signing", [True, False], ids=["fast", "standard"])
async def test_broadcast_to_a_trickling_peer_ends_as_timeout(
    settings: Any, fault_endpoint: FaultEndpoint, fast_signing: bool
) -> None:
    from asgiref.sync import sync_to_async
    from django.db import connections

    from aws_ws_async.models import WebSocketSession
    from tests.fixtures_delivery import make_gateway, make_sessions, point_settings_at

    point_settings_at(
        settings,
        fault_endpoint.url,
        attempt_timeout_seconds=0.4,
        max_transient_retries=0,
        fast_signing=fast_signing,
    )
    gateway = await sync_to_async(make_gateway)()
    [slow, ok] = await sync_to_async(make_sessions)(gateway, 2)
    fault_endpoint.plan.trickle_ids = {slow}
    async with asyncio.timeout(20):
        report = await WebSocketSession.objects.all().asend_message("hi")
    assert report.delivered == [ok]
    assert [(f.connection_id, f.reason) for f in report.failed] == [(slow, "timeout")]
    await sync_to_async(connections.close_all)()


# --- the in-memory transport -----------------------------------------------------------------


async def test_in_memory_transport_records_and_answers_as_scripted() -> None:
    from aws_ws_async.delivery import InMemoryTransport, Network

    net = Network()
    net.script("gone=", "gone")
    net.script("busy=", "throttle", times=2)
    net.script("flaky=", "5xx", times=1)
    net.script("slow=", "timeout", times=1)
    net.script("no=", "forbidden")
    async with InMemoryTransport("memory://api/stage", network=net) as transport:
        report = await deliver(
            transport,
            ["ok=", "gone=", "busy=", "flaky=", "slow=", "no="],
            PAYLOAD,
            policy=policy(),
        )
        assert (await transport.delete("ok=")).status == 204
    assert transport.closed
    assert sorted(report.delivered) == ["busy=", "flaky=", "ok=", "slow="]
    assert report.gone == ["gone="]
    assert [(f.connection_id, f.reason) for f in report.failed] == [("no=", "forbidden")]
    assert report.throttled == 2
    assert net.posts_to("busy=") == [PAYLOAD]  # the two 429s are calls, not deliveries
    assert [c.connection_id for c in net.posts].count("busy=") == 3
    assert net.deleted() == ["ok="]
    assert {c.endpoint_url for c in net.calls} == {"memory://api/stage"}
    with pytest.raises(RuntimeError, match="closed"):
        await transport.post("ok=", b"late")
    with pytest.raises(ValueError, match="unknown outcome"):
        net.script("x=", "explode")
    with pytest.raises(ValueError, match="positive int"):
        net.script("x=", "gone", times=0)
    net.reset()
    assert net.calls == [] and net.posts_to("ok=") == []  # noqa: PT018


@pytest.mark.django_db(transaction=True)
async def test_a_users_test_with_the_in_memory_transport(settings: Any) -> None:
    """What docs/transports.md shows: no server, the ``transport`` setting, the outbox."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    from aws_ws_async.models import WebSocketSession
    from aws_ws_async.testing import network
    from tests.fixtures_delivery import make_gateway, make_sessions, point_settings_at

    point_settings_at(
        settings,
        "https://{api_id}.execute-api.us-east-1.amazonaws.com/{stage}",
        transport="aws_ws_async.testing.InMemoryTransport",
    )
    network.reset()
    gateway = await sync_to_async(make_gateway)()
    [ok, gone] = await sync_to_async(make_sessions)(gateway, 2)
    network.script(gone, "gone")

    report = await WebSocketSession.objects.all().asend_message({"hi": 1})

    assert report.delivered == [ok]
    assert network.posts_to(ok) == [b'{"hi":1}']
    assert (
        network.calls[0].endpoint_url
        == "https://dlv0000001.execute-api.us-east-1.amazonaws.com/prod"
    )
    row = await WebSocketSession.objects.aget(connection_id=gone)
    assert (row.connected, row.disconnect_reason) == (False, "gone")
    await sync_to_async(connections.close_all)()


async def test_missing_aiobotocore_internals_fall_back_to_the_standard_path(
    fault_settings: Any, fault_endpoint: FaultEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    """A client without the private attributes the fast path reads (another aiobotocore):
    the transport is still built, uses ``post_to_connection``, and says so once at INFO."""
    import logging
    from types import SimpleNamespace

    from aws_ws_async.delivery import aiobotocore_transport

    real = await aws.get_management_client(fault_endpoint.url)
    public_only = SimpleNamespace(
        meta=real.meta,
        post_to_connection=real.post_to_connection,
        delete_connection=real.delete_connection,
    )
    aiobotocore_transport._fallback_logged = False
    with caplog.at_level(logging.INFO, logger="aws_ws_async.delivery"):
        first = AiobotocoreTransport(public_only)
        second = AiobotocoreTransport(public_only)
    assert not first.fast
    assert not second.fast
    fallbacks = [r for r in caplog.records if "internals changed" in r.getMessage()]
    assert [r.levelno for r in fallbacks] == [logging.INFO]  # once, not per transport
    report = await deliver(first, ["a=", "b="], PAYLOAD, policy=policy())
    assert sorted(report.delivered) == ["a=", "b="]
    assert fault_endpoint.received["a="] == [PAYLOAD]


async def test_a_transport_that_owns_its_client_closes_it_on_exit(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    """``async with`` a transport built with ``owned=`` (outside the cache) closes the client."""
    context = aws.cached_session().client(
        "apigatewaymanagementapi",
        endpoint_url=fault_endpoint.url,
        config=aws.management_client_config(),
    )
    client = await context.__aenter__()
    async with AiobotocoreTransport(client, owned=context) as transport:
        assert (await transport.post("own=", b"1")).status == 200
        pools = list(client._endpoint.http_session._sessions.values())
        assert pools
        assert not any(p.closed for p in pools)
    assert all(p.closed for p in pools)
    await transport.aclose()  # idempotent
    shared = await aws.get_transport(fault_endpoint.url)
    await shared.aclose()  # a cached transport never closes the loop's shared client
    assert (await shared.post("still=", b"2")).status == 200
