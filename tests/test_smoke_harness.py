from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from aws_ws_async.models import WebSocketSession
from tests.e2e_harness import (
    DEMO_LAYOUT,
    EXAMPLE,
    DemoProject,
    E2EProject,
    RunningServer,
    _command,
    _pg_params,
    _postgres,
    wait_until,
)


@pytest.mark.django_db(transaction=True)
async def test_async_orm_round_trip(gateway) -> None:
    await WebSocketSession.objects.acreate(connection_id="abc=", api_gateway=gateway)
    assert await WebSocketSession.objects.for_channel("").acount() == 1


def test_moto_server_answers(moto) -> None:
    with urllib.request.urlopen(f"{moto}/moto-api/data.json", timeout=10) as response:
        assert isinstance(json.load(response), dict)


def test_demo_project_is_configured_through_its_own_variables(tmp_path: Path) -> None:
    """The demo reads ``DEMO_*`` (as users set them), not the e2e project's ``E2E_*``."""
    demo = DemoProject(tmp_path, management_endpoint_url="http://127.0.0.1:9/x")
    assert demo.env["DJANGO_SETTINGS_MODULE"] == "demo_project.settings"
    assert demo.env["DEMO_DB_NAME"] == demo.db_name
    assert demo.env["DEMO_MANAGEMENT_ENDPOINT_URL"] == "http://127.0.0.1:9/x"
    assert demo.env["DEMO_DEBUG"] == "0"
    assert str(EXAMPLE) in demo.env["PYTHONPATH"].split(os.pathsep)
    assert not [name for name in demo.env if name.startswith("E2E_") and name not in os.environ]


def test_server_commands_name_the_projects_application() -> None:
    assert DEMO_LAYOUT.asgi_app in _command("uvicorn", 8000, DEMO_LAYOUT)
    assert DEMO_LAYOUT.asgi_app in _command("daphne", 8000, DEMO_LAYOUT)
    assert "tests.e2e_project.wsgi:application" in _command("gunicorn", 8000)
    with pytest.raises(ValueError, match="no WSGI module"):
        _command("gunicorn", 8000, DEMO_LAYOUT)
    with pytest.raises(ValueError, match="unknown server"):
        _command("hypercorn", 8000)


async def test_wait_until_returns_once_true_and_times_out_otherwise() -> None:
    calls = []
    await wait_until(lambda: calls.append(1) or len(calls) >= 3)
    assert len(calls) == 3
    with pytest.raises(TimeoutError):
        await wait_until(lambda: False, timeout=0.05)


def test_demo_project_under_a_real_server(
    e2e_demo_server: RunningServer, e2e_demo_project: DemoProject
) -> None:
    """The demo serves its own URLconf (the chat's token route) from its migrated database."""
    count = e2e_demo_project.shell_json(
        "import json; from aws_ws_async.models import ApiGateway; "
        "print(json.dumps(ApiGateway.objects.count()))"
    )
    assert count == 0
    request = urllib.request.Request(f"{e2e_demo_server.url}/ws-token/", method="GET")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405  # the token view answers POST only


def test_a_failed_setup_leaves_no_database_behind(tmp_path: Path) -> None:
    """``with E2EProject(...)``: a migration that fails still drops the PostgreSQL database."""
    broken = E2EProject(
        tmp_path,
        management_endpoint_url="http://127.0.0.1:9",
        extra_env={"DJANGO_SETTINGS_MODULE": "tests.no_such_settings"},
    )
    with pytest.raises(RuntimeError, match="manage migrate"), broken:
        pytest.fail("the block must not run")
    if _postgres():
        import psycopg

        with psycopg.connect(dbname="postgres", autocommit=True, **_pg_params()) as conn:
            rows = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (broken.db_name,)
            ).fetchall()
        assert rows == []
