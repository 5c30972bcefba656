"""Client lifecycle, credentials/region resolution and the management endpoint."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aws_ws_async import aws
from aws_ws_async.exceptions import ImproperlyConfiguredGateway
from aws_ws_async.testing import FaultEndpoint
from tests.fixtures_delivery import point_settings_at


async def test_one_client_per_loop_and_endpoint(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    before = aws.client_stats()
    first, second = await asyncio.gather(
        aws.get_management_client(fault_endpoint.url),
        aws.get_management_client(fault_endpoint.url),
    )
    assert first is second  # concurrent callers share one creation
    other = await aws.get_management_client(fault_endpoint.url + "/stage2")
    assert other is not first
    stats = aws.client_stats()
    assert stats.created - before.created == 2
    assert stats.open_on_this_loop == 2
    assert await aws.aclose_clients() == 2
    assert aws.client_stats().closed - before.closed == 2
    assert aws.client_stats().open_on_this_loop == 0
    again = await aws.get_management_client(fault_endpoint.url)
    assert again is not first


def test_clients_are_closed_when_their_loop_shuts_down(
    settings: Any, threaded_fault_endpoint: FaultEndpoint
) -> None:
    point_settings_at(settings, threaded_fault_endpoint.url)

    async def use() -> bool:
        client = await aws.get_management_client(threaded_fault_endpoint.url)
        await client.post_to_connection(ConnectionId="x", Data=b"1")
        return client is await aws.get_management_client(threaded_fault_endpoint.url)

    before = aws.client_stats()
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(use())))
    thread.start()
    thread.join(20)
    after = aws.client_stats()
    assert results == [True]
    assert after.created - before.created == 1
    assert after.closed - before.closed == 1  # closed by asyncio.run's shutdown, not leaked


async def test_botocore_retries_are_off(fault_settings: Any, fault_endpoint: FaultEndpoint) -> None:
    """The engine owns retries: botocore must make exactly one attempt per call."""
    fault_endpoint.plan.server_error_first = 10
    client = await aws.get_management_client(fault_endpoint.url)
    with pytest.raises(ClientError) as info:
        await client.post_to_connection(ConnectionId="x", Data=b"1")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert fault_endpoint.calls["x"] == 1


def test_management_endpoint(settings: Any) -> None:
    settings.AWS_WS_ASYNC = {"region_name": "eu-west-3"}
    assert (
        aws.management_endpoint("abc123", "prod")
        == "https://abc123.execute-api.eu-west-3.amazonaws.com/prod"
    )
    settings.AWS_WS_ASYNC = {"management_endpoint_url": "https://ws.example.com/{stage}/"}
    assert aws.management_endpoint("abc123", "v1") == "https://ws.example.com/v1"
    with pytest.raises(ImproperlyConfiguredGateway):
        aws.management_endpoint("", "prod")


@pytest.fixture
def aws_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    config = tmp_path / "config"
    config.write_text("[profile ops]\nregion = ap-south-1\n")
    credentials = tmp_path / "credentials"
    credentials.write_text("[ops]\naws_access_key_id = AKOPS\naws_secret_access_key = s3cr3t\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    return "ops"


def test_profile_keeps_the_explicit_region(settings: Any, aws_profile: str) -> None:
    """The predecessor dropped the region when a profile was set."""
    settings.AWS_WS_ASYNC = {"profile_name": aws_profile, "region_name": "us-west-2"}
    session = aws.make_session()
    assert session.region_name == "us-west-2"
    assert session.profile_name == aws_profile
    settings.AWS_WS_ASYNC = {"profile_name": aws_profile}
    assert aws.resolve_region() == "ap-south-1"


async def test_profile_credentials_reach_the_client(
    settings: Any, aws_profile: str, fault_endpoint: FaultEndpoint
) -> None:
    settings.AWS_WS_ASYNC = {
        "profile_name": aws_profile,
        "management_endpoint_url": fault_endpoint.url,
    }
    client = await aws.get_management_client(fault_endpoint.url)
    frozen = await client._request_signer._credentials.get_frozen_credentials()
    assert frozen.access_key == "AKOPS"
    assert client.meta.region_name == "ap-south-1"


async def test_explicit_keys_win_and_credentials_key_hides_secrets(settings: Any) -> None:
    settings.AWS_WS_ASYNC = {
        "region_name": "us-east-2",
        "access_key_id": "AKEXPLICIT",
        "secret_access_key": "very-secret",
    }
    session = aws.make_session()
    credentials = await session.get_credentials()
    assert (await credentials.get_frozen_credentials()).access_key == "AKEXPLICIT"
    key = aws.credentials_key()
    assert "very-secret" not in repr(key)
    assert aws.cached_session() is aws.cached_session()


# --- the per-loop cache: cancellation, bounds, per-loop credentials, transports -------------


class CredentialsEndpoint:
    """A loopback container-credentials endpoint (``AWS_CONTAINER_CREDENTIALS_FULL_URI``).

    Answers temporary credentials that expire in 5 minutes, inside botocore's mandatory
    refresh window, so every use of them refreshes under the credentials' ``asyncio.Lock``.
    """

    def __init__(self, delay: float = 0.0) -> None:
        import http.server
        import json
        import time
        from datetime import UTC, datetime, timedelta

        self.delay = delay
        self.requests = 0
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests += 1
                time.sleep(endpoint.delay)
                expires = datetime.now(UTC) + timedelta(minutes=5)
                body = json.dumps(
                    {
                        "AccessKeyId": "AKCONTAINER",
                        "SecretAccessKey": "container-secret",
                        "Token": "container-token",
                        "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v2/credentials"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def container_credentials(
    settings: Any, monkeypatch: pytest.MonkeyPatch, fault_endpoint: FaultEndpoint
) -> Any:
    """No keys anywhere but the container endpoint, so every client resolves credentials there."""
    endpoint = CredentialsEndpoint()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url)
    point_settings_at(settings, fault_endpoint.url, access_key_id=None, secret_access_key=None)
    yield endpoint
    endpoint.close()


async def test_a_cancelled_creator_does_not_fail_the_callers_waiting_with_it(
    container_credentials: CredentialsEndpoint, fault_endpoint: FaultEndpoint
) -> None:
    """Slow credentials: the first caller is cancelled mid-creation; the second still gets
    the client (the old cache handed it the first caller's CancelledError)."""
    container_credentials.delay = 0.5
    first = asyncio.ensure_future(aws.get_management_client(fault_endpoint.url))
    await asyncio.sleep(0.1)
    second = asyncio.ensure_future(aws.get_management_client(fault_endpoint.url))
    await asyncio.sleep(0.1)
    first.cancel()
    async with asyncio.timeout(10):
        client = await second
    with pytest.raises(asyncio.CancelledError):
        await first
    assert client is await aws.get_management_client(fault_endpoint.url)
    await client.post_to_connection(ConnectionId="x=", Data=b"1")
    assert fault_endpoint.received["x="] == [b"1"]
    assert "AKCONTAINER" in fault_endpoint.headers_of["x="]["Authorization"]


async def test_refreshable_credentials_from_two_loops_at_once(
    container_credentials: CredentialsEndpoint, fault_endpoint: FaultEndpoint
) -> None:
    """The portal loop and this loop broadcast at once with refresh-on-every-use credentials:
    each loop needs its own (their asyncio.Lock binds to one loop)."""
    from aws_ws_async import sync
    from aws_ws_async.delivery import AiobotocoreTransport, DeliveryPolicy, deliver

    container_credentials.delay = 0.01
    policy = DeliveryPolicy(max_concurrency=10, max_transient_retries=0)

    async def broadcast(prefix: str) -> Any:
        client = await aws.get_management_client(fault_endpoint.url)
        transport = AiobotocoreTransport(client)
        assert transport.fast  # signs with client._request_signer._credentials per request
        return await deliver(
            transport, [f"{prefix}{i:03d}=" for i in range(40)], b"x", policy=policy
        )

    loop = asyncio.get_running_loop()
    on_portal = loop.run_in_executor(None, lambda: sync.run(lambda: broadcast("p"), timeout=60))
    async with asyncio.timeout(60):
        here, there = await asyncio.gather(broadcast("t"), on_portal)
    for report in (here, there):
        assert [(f.connection_id, f.reason, f.detail) for f in report.failed] == []
        assert report.delivered_count == 40
    assert container_credentials.requests > 2  # the credentials did refresh


async def test_clients_per_endpoint_stay_bounded_whatever_the_concurrency(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    """Every distinct ``concurrency=`` above max_concurrency used to cache one more client."""
    clients = {
        id(await aws.get_management_client(fault_endpoint.url, max_pool_connections=n))
        for n in range(1, 5000, 37)
    }
    # max_concurrency (100), then 128, 256, 512 and 1024 at most.
    assert len(clients) <= 5
    assert aws.client_stats().open_on_this_loop == len(clients)
    biggest = await aws.get_management_client(fault_endpoint.url, max_pool_connections=10**6)
    assert biggest._endpoint.http_session._max_pool_connections == aws.MAX_POOL_CONNECTIONS


async def test_provisioning_and_delivery_share_the_loops_session(
    aws_settings: Any, moto: str
) -> None:
    from aws_ws_async.provisioning.clients import apigatewayv2_client

    async with apigatewayv2_client() as first:
        await first.get_apis()
    async with apigatewayv2_client() as second:
        pass
    assert first is second  # cached on this loop, not one client per operation
    session = aws.cached_session()
    assert session is aws.cached_session()
    management = await aws.get_management_client(moto)
    assert management._request_signer._credentials is not None
    assert await aws.aclose_clients() == 1


def test_each_loop_has_its_own_session(fault_settings: Any) -> None:
    async def session_here() -> Any:
        return aws.cached_session()

    first, second = asyncio.run(session_here()), asyncio.run(session_here())
    assert first is not second
    # ... sharing one botocore data loader, so a new loop does not reload service models.
    assert first._session.get_component("data_loader") is second._session.get_component(
        "data_loader"
    )


async def test_transports_are_cached_per_endpoint_and_closed_with_the_loop(
    settings: Any,
) -> None:
    from aws_ws_async.delivery.memory import InMemoryTransport

    point_settings_at(settings, "memory://x", transport="aws_ws_async.testing.InMemoryTransport")
    one = await aws.get_transport("memory://a")
    assert isinstance(one, InMemoryTransport)
    assert one is await aws.get_transport("memory://a")
    assert one is await aws.get_transport("memory://a", pool_size=50)  # same pool bucket
    other = await aws.get_transport("memory://b")
    assert other is not one
    await aws.aclose_clients()
    assert one.closed
    assert other.closed
    assert await aws.get_transport("memory://a") is not one


async def test_the_default_transport_reuses_the_loops_client(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    from aws_ws_async.delivery import AiobotocoreTransport

    transport = await aws.get_transport(fault_endpoint.url)
    assert isinstance(transport, AiobotocoreTransport)
    assert transport.client is await aws.get_management_client(fault_endpoint.url)
    assert transport is await aws.get_transport(fault_endpoint.url)
    assert (await transport.post("t=", b"hi")).status == 200


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("aws_ws_async.no_such_module.Transport", "does not import"),
        ("aws_ws_async.delivery.NoSuchTransport", "does not import"),
        ("aws_ws_async.delivery.MAX_PAYLOAD_BYTES", "not a class or factory"),
        ("aws_ws_async.delivery.DeliveryReport", "not a Transport"),
    ],
)
async def test_a_bad_transport_setting_is_improperly_configured(
    settings: Any, path: str, message: str
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    point_settings_at(settings, "memory://x", transport=path)
    with pytest.raises(ImproperlyConfigured, match=message):
        await aws.get_transport("memory://x")
    with pytest.raises(ImproperlyConfigured, match="not a dotted path"):
        aws.transport_factory("nodots")  # the setting itself refuses it earlier (conf)


def test_provisioning_clients_are_closed_when_their_loop_shuts_down(
    aws_settings: Any, moto: str
) -> None:
    from aws_ws_async.provisioning.clients import apigatewayv2_client

    async def use() -> list[Any]:
        async with apigatewayv2_client() as client:
            await client.get_apis()
        sessions = list(client._endpoint.http_session._sessions.values())  # its aiohttp pools
        assert sessions
        assert not any(s.closed for s in sessions)
        return sessions

    results: list[list[Any]] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(use())))
    thread.start()
    thread.join(30)
    [sessions] = results
    assert all(s.closed for s in sessions)  # closed by the loop's shutdown, not leaked


async def test_a_failed_creation_reaches_every_waiter_and_is_retried(
    fault_settings: Any, fault_endpoint: FaultEndpoint
) -> None:
    from botocore.exceptions import BotoCoreError

    async def attempt() -> BaseException | None:
        try:
            await aws.get_management_client("htp:/not a url")
        except BaseException as error:
            return error
        return None

    first, second = await asyncio.gather(attempt(), attempt())
    assert isinstance(first, ValueError | BotoCoreError), repr(first)
    assert type(second) is type(first)
    again = await attempt()  # nothing cached and nothing left pending: a new attempt
    assert type(again) is type(first)
    assert again is not first
