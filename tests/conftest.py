"""Shared fixtures: a real moto server on loopback and convenience rows.

AWS is only ever mocked at the HTTP boundary: moto runs in server mode on 127.0.0.1 and our
code talks to it over real HTTP with real SigV4-signed requests.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable, Iterator, Sequence
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


def _flush_with_delete_on_postgresql() -> Callable[[], None]:
    """Make the flush after each transactional test DELETE rows instead of TRUNCATE tables.

    Django empties PostgreSQL with one ``TRUNCATE`` of every table: that makes new files for
    each table and index and syncs them, about 0.8 s for our ~20 tables on a quiet machine
    and 2-3 s on a busy one, after every ``transaction=True`` test (most of them here). The
    tables hold a few rows by then, and a ``DELETE`` of each empties them in milliseconds.
    Same end state: every foreign key Django makes is ``DEFERRABLE INITIALLY DEFERRED`` and
    the flush runs in one transaction, so the order of the DELETEs does not matter (a
    non-deferrable key would fail the flush loudly, not leave rows). Sequences are not reset
    by either (``reset_sequences=False``); a flush that asks for that, or for ``CASCADE``,
    still truncates. Only this test process's flush changes: the library, the migrations and
    the e2e projects' servers are untouched. Returns the undo.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(
        self: DatabaseOperations,
        style: Any,
        tables: Sequence[str],
        *,
        reset_sequences: bool = False,
        allow_cascade: bool = False,
    ) -> list[str]:
        if not tables or reset_sequences or allow_cascade:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        deletes = [f"DELETE FROM {self.quote_name(table)};" for table in tables]
        return ["SET CONSTRAINTS ALL DEFERRED;", *deletes]

    DatabaseOperations.sql_flush = sql_flush  # type: ignore[method-assign,assignment]

    def undo() -> None:
        DatabaseOperations.sql_flush = truncate  # type: ignore[method-assign]

    return undo


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database, which can also be dropped again at the end of the run.

    Async tests reach the database from asgiref's worker thread, whose connection outlives
    the test; PostgreSQL refuses to drop a database that still has sessions, so every run
    would leave its (per-run) test database behind. This wrapper's teardown runs before
    pytest-django's and ends those sessions. Runs that use no database never create one.
    On PostgreSQL the flush between transactional tests deletes rows instead of truncating
    (:func:`_flush_with_delete_on_postgresql`).
    """
    from django.db import connections

    postgres = any(c.vendor == "postgresql" for c in connections.all())
    undo_flush = _flush_with_delete_on_postgresql() if postgres else (lambda: None)
    try:
        yield
    finally:
        undo_flush()
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
