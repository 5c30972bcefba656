"""The e2e harness's fixtures (``tests/conftest.py`` loads every ``fixtures_*`` module).

Module-scoped: each project migrates and each server starts once per test module, and a module
can override ``e2e_project`` (or ``e2e_demo_project``) with one of its own, which the server
fixtures then serve. The pieces are in ``tests/e2e_harness.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aws_ws_async.testing import FaultEndpoint, FaultPlan
from tests.e2e_harness import (
    ASGI_SERVERS,
    WSGI_SERVERS,
    DemoProject,
    E2EProject,
    RunningServer,
    serve,
)


@pytest.fixture(scope="module")
def e2e_endpoint() -> Iterator[FaultEndpoint]:
    """A loopback ``@connections`` endpoint the project posts to (reset it per test if needed)."""
    endpoint = FaultEndpoint(FaultPlan())
    endpoint.start_in_thread()
    try:
        yield endpoint
    finally:
        endpoint.stop_thread()


@pytest.fixture(scope="module")
def e2e_project(
    tmp_path_factory: pytest.TempPathFactory, e2e_endpoint: FaultEndpoint, moto_server: str
) -> Iterator[E2EProject]:
    """The e2e project, migrated, with provisioning pointed at the moto server."""
    with E2EProject(
        tmp_path_factory.mktemp("e2e"),
        management_endpoint_url=e2e_endpoint.url,
        aws_endpoint_url=moto_server,
    ) as project:
        yield project


@pytest.fixture(scope="module")
def e2e_demo_project(
    tmp_path_factory: pytest.TempPathFactory, e2e_endpoint: FaultEndpoint
) -> Iterator[DemoProject]:
    """The example project, migrated (SQLite file or its own PostgreSQL database), posting its
    ``@connections`` calls to ``e2e_endpoint``."""
    with DemoProject(
        tmp_path_factory.mktemp("demo"), management_endpoint_url=e2e_endpoint.url
    ) as project:
        yield project


def _served(
    request: pytest.FixtureRequest, project: E2EProject, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    with serve(request.param, project, tmp_path_factory.mktemp("logs")) as server:
        yield server


@pytest.fixture(scope="module", params=ASGI_SERVERS)
def e2e_server(
    request: pytest.FixtureRequest,
    e2e_project: E2EProject,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """The project under a real uvicorn and a real daphne (one test run each)."""
    yield from _served(request, e2e_project, tmp_path_factory)


@pytest.fixture(scope="module", params=ASGI_SERVERS + WSGI_SERVERS)
def e2e_any_server(
    request: pytest.FixtureRequest,
    e2e_project: E2EProject,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """The project under uvicorn, daphne, runserver and gunicorn (WSGI, forked workers)."""
    yield from _served(request, e2e_project, tmp_path_factory)


@pytest.fixture(scope="module", params=ASGI_SERVERS)
def e2e_demo_server(
    request: pytest.FixtureRequest,
    e2e_demo_project: DemoProject,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """The example project (what users copy) under a real uvicorn and a real daphne."""
    yield from _served(request, e2e_demo_project, tmp_path_factory)
