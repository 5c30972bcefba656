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
