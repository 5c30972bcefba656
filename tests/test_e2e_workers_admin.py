"""The admin's slow actions on a real ``db_worker`` process (issue 12.6), on PostgreSQL.

A Django shell of the e2e project (django-tasks-db as its task backend) plays the admin user:
it posts the action through the real admin (Django's test client, logged in as a superuser)
while no worker runs, so what the request did is only what it enqueued: the response comes
back with "enqueued", nothing was sent to AWS or ``@connections``. Then one real worker
process starts, and the rows show the outcome: the Broadcast of a bulk close finished with
exact totals, a created gateway's provisioning status ``deployed`` and its history entry.
AWS is moto behind the local endpoint of ``tests/fixtures_provisioning.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aws_ws_async.testing import FaultEndpoint
from tests.e2e_harness import E2EProject, _postgres
from tests.fixtures_provisioning import LocalApiGateway
from tests.fixtures_workers import finished_in_db, rows, start_db_workers, stop_workers, worker_env

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(150),
    pytest.mark.skipif(
        not _postgres(),
        reason="PostgreSQL only (CI time); test_scaleout_admin_tasks.py runs the path on SQLite",
    ),
]

ADMIN = """
import json
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from django.test.utils import setup_test_environment

setup_test_environment()
User = get_user_model()
user = User.objects.filter(is_superuser=True).first() or User.objects.create_superuser(
    "boss", "boss@example.com", "pw")
client = Client()
client.force_login(user)
response = client.post(URL, DATA, follow=True)
print("RESULT " + json.dumps({
    "status": response.status_code,
    "messages": [str(m) for m in response.context["messages"]],
}))
"""


def admin_post(project: E2EProject, url: str, data: dict[str, Any]) -> dict[str, Any]:
    """POST an admin action as a superuser; the status code and the messages it left."""
    code = ADMIN.replace("URL", repr(url)).replace("DATA", repr(data))
    out = project.shell(code, timeout=60)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return dict(json.loads(line.removeprefix("RESULT ")))


@pytest.fixture(scope="module")
def apigw(moto_server: str) -> Iterator[LocalApiGateway]:
    endpoint = LocalApiGateway(moto_server)
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.stop()


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, worker_endpoint: FaultEndpoint, apigw: Any
) -> Iterator[E2EProject]:
    e2e = E2EProject(
        tmp_path_factory.mktemp("workers-admin"),
        management_endpoint_url=worker_endpoint.url,
        aws_endpoint_url=apigw.url,
        extra_env=worker_env("tests.e2e_workers_settings"),
    )
    e2e.setup()
    try:
        yield e2e
    finally:
        e2e.close()


def wait_for(project: E2EProject, sql: str, expected: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    found = None
    while time.monotonic() < deadline:
        found = rows(project, sql)
        if found == expected:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{sql}: {found!r}, expected {expected!r}")


def test_disconnect_selected_returns_at_once_and_a_worker_closes_exactly_them(
    project: E2EProject, worker_endpoint: FaultEndpoint, tmp_path: Path
) -> None:
    worker_endpoint.plan.latency = 0.01
    made = project.shell(
        """
from aws_ws_async.models import ApiGateway, WebSocketSession
g = ApiGateway.objects.create(api_name="Admin", api_id="adm0000001", stage_name="prod",
    api_created=True, deployment_id="d1")
rows = WebSocketSession.objects.bulk_create(
    WebSocketSession(connection_id=f"adm{i:04d}=", channel_name="ops" if i < 1100 else "dev",
    api_gateway=g) for i in range(1200))
print("PK", rows[0].pk)
"""
    )
    first = next(x for x in made.splitlines() if x.startswith("PK")).split()[1]
    before = len(worker_endpoint.deleted)
    result = admin_post(
        project,
        "/admin/aws_ws_async/websocketsession/?channel_name=ops",  # every one of the filter
        {"action": "disconnect_selected", "_selected_action": [first], "select_across": "1"},
    )
    assert result["status"] == 200
    (message,) = result["messages"]
    assert message.startswith('Disconnect: enqueued as <a href="/admin/aws_ws_async/broadcast/')
    ((broadcast_id, status),) = rows(project, "SELECT id, status FROM aws_ws_async_broadcast")
    assert status == "pending"
    assert len(worker_endpoint.deleted) == before  # nothing closed by the request itself

    started = start_db_workers(project, tmp_path, count=1)
    try:
        done = finished_in_db(project, broadcast_id)
    finally:
        stop_workers([w.process for w in started])
    assert (done["status"], done["delivered"], done["gone"], done["failed"]) == (
        "finished",
        1100,
        0,
        0,
    )
    assert sorted(worker_endpoint.deleted[before:]) == [f"adm{i:04d}=" for i in range(1100)]
    state = rows(
        project,
        "SELECT connected, disconnect_reason, count(*) FROM aws_ws_async_websocketsession "
        "GROUP BY connected, disconnect_reason ORDER BY connected",
    )
    assert [tuple(r) for r in state] == [(False, "server", 1100), (True, "", 100)]


def test_create_api_returns_at_once_and_the_worker_provisions_with_history(
    project: E2EProject, tmp_path: Path
) -> None:
    made = project.shell(
        """
from aws_ws_async.models import ApiGateway
g = ApiGateway.objects.create(api_name="Queued API", stage_name="production",
    target_base_endpoint="https://backend.example.com/ws/")
print("PK", g.pk)
"""
    )
    pk = int(next(x for x in made.splitlines() if x.startswith("PK")).split()[1])
    result = admin_post(
        project,
        "/admin/aws_ws_async/apigateway/",
        {"action": "create_api_gateway", "_selected_action": [str(pk)]},
    )
    assert result["messages"] == [
        "Create API enqueued for 1 gateway(s): each row's provisioning status and last error "
        "show its progress, and the outcome is written to the gateway's history."
    ]
    status = f"SELECT provisioning_status FROM aws_ws_async_apigateway WHERE id = {pk}"
    assert rows(project, status) == [("pending",)]  # the request only enqueued

    started = start_db_workers(project, tmp_path, count=1)
    try:
        wait_for(project, status, [("deployed",)])
        history = wait_for(
            project,
            "SELECT count(*) FROM django_admin_log WHERE object_id = "
            f"'{pk}' AND change_message LIKE 'Create API: created and deployed%'",
            [(1,)],
        )
    finally:
        stop_workers([w.process for w in started])
    assert history == [(1,)]
