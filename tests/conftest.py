"""Shared fixtures: a real moto server on loopback and convenience rows.

AWS is only ever mocked at the HTTP boundary: moto runs in server mode on 127.0.0.1 and our
code talks to it over real HTTP with real SigV4-signed requests.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Each area keeps its fixtures in tests/fixtures_<area>.py; they are all registered here.
pytest_plugins = sorted(
    f"tests.{path.stem}" for path in Path(__file__).parent.glob("fixtures_*.py")
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """Base URL of a moto server (no stage path: moto's @connections wants none)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: str) -> str:
    """The moto server, reset before each test so tests never see each other's resources."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    return moto_server


@pytest.fixture
def aws_settings(settings: Any, moto: str) -> Any:
    """Point every AWS endpoint of ours at the moto server."""
    settings.AWS_WS_ASYNC = {
        **getattr(settings, "AWS_WS_ASYNC", {}),
        "region_name": "us-east-1",
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "management_endpoint_url": moto,
        "apigateway_endpoint_url": moto,
        "route53_endpoint_url": moto,
    }
    return settings


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database, which can also be dropped again at the end of the run.

    Async tests reach the database from asgiref's worker thread, whose connection outlives
    the test; PostgreSQL refuses to drop a database that still has sessions, so every run
    would leave its (per-run) test database behind. This wrapper's teardown runs before
    pytest-django's and ends those sessions. Runs that use no database never create one.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()


@pytest.fixture(autouse=True)
def _fresh_app_settings() -> Iterator[None]:
    """Drop the cached settings object around every test.

    ``setting_changed`` resets it when a test assigns a setting, but pytest-django's
    ``del settings.X`` (and its undo) sends no signal, which would leak a stale object into
    later tests.
    """
    from aws_ws_async.conf import reset_settings_cache

    reset_settings_cache()
    yield
    reset_settings_cache()


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let a developer's real AWS credentials or config leak into a test."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def gateway(db: None) -> Any:
    from aws_ws_async.models import ApiGateway

    return ApiGateway.objects.create(
        api_name="Test API",
        api_id="abc123def4",
        stage_name="test",
        target_base_endpoint="https://backend.example.com/ws/",
        api_created=True,
        deployment_id="dep1",
    )


@pytest.fixture
def user(db: None) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model()._default_manager.create_user(
        email="alice@example.com", password="pw-alice-123"
    )
