"""Run ``tests/e2e_project`` under real servers on 127.0.0.1, for end-to-end tests.

The Django test client runs a sync view in the test's own thread; uvicorn and daphne run it
through ``sync_to_async(thread_sensitive=True)`` on a per-request executor, and runserver in a
WSGI worker thread. Only a real server shows how our sync bridge behaves there, so these
helpers start one as a subprocess:

* :class:`E2EProject` builds the environment (database, moto URL, ``@connections`` URL) and
  migrates a database of its own: a SQLite file, or with ``AWS_WS_ASYNC_TEST_DB=postgres`` a
  fresh PostgreSQL database dropped again by :meth:`E2EProject.close`.
* :func:`serve` starts ``uvicorn``, ``daphne``, ``runserver`` or ``gunicorn`` on a free port,
  waits until it answers HTTP, and ends its whole process group on exit (output goes to a log
  file, never a pipe nobody reads, and is attached to the error when the server fails to
  start).
* The module-scoped fixtures ``e2e_endpoint``, ``e2e_project``, ``e2e_server`` (parametrized
  over :data:`ASGI_SERVERS`) and ``e2e_any_server`` (ASGI plus runserver and gunicorn) start
  each piece once per test module. ``tests/fixtures_e2e.py`` registers them for every test module.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aws_ws_async.testing import FaultEndpoint, FaultPlan

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_MODULE = "tests.e2e_project.settings"
GATEWAY_SECRET = "e2e-gateway-secret-0123456789abcdefghijkl"
ASGI_SERVERS = ("daphne", "uvicorn")
#: gunicorn runs sync workers forked from a master that imported the project (``--preload``).
WSGI_SERVERS = ("runserver", "gunicorn") if importlib.util.find_spec("gunicorn") else ("runserver",)


def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres() -> bool:
    return os.environ.get("AWS_WS_ASYNC_TEST_DB", "sqlite").lower() in {
        "postgres",
        "postgresql",
        "pg",
    }


def _pg_params() -> dict[str, str]:
    return {
        "host": os.environ.get("AWS_WS_ASYNC_PG_HOST", "127.0.0.1"),
        "port": os.environ.get("AWS_WS_ASYNC_PG_PORT", "5432"),
        "user": os.environ.get("AWS_WS_ASYNC_PG_USER", "postgres"),
        "password": os.environ.get("AWS_WS_ASYNC_PG_PASSWORD", ""),
    }


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **_pg_params()) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@dataclass
class E2EProject:
    """The e2e project's environment and its own migrated database."""

    workdir: Path
    management_endpoint_url: str
    aws_endpoint_url: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(init=False)
    db_name: str = field(init=False)

    def __post_init__(self) -> None:
        postgres = _postgres()
        if postgres:
            self.db_name = f"e2e_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        else:
            self.db_name = str(self.workdir / "e2e.sqlite3")
        pg = _pg_params()
        env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "E2E_DB_ENGINE": "postgres" if postgres else "sqlite",
            "E2E_DB_NAME": self.db_name,
            "E2E_PG_HOST": pg["host"],
            "E2E_PG_PORT": pg["port"],
            "E2E_PG_USER": pg["user"],
            "E2E_PG_PASSWORD": pg["password"],
            "E2E_MANAGEMENT_ENDPOINT_URL": self.management_endpoint_url,
            "E2E_AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "E2E_GATEWAY_SECRET": GATEWAY_SECRET,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        self.env = env

    def setup(self) -> None:
        """Create (PostgreSQL) and migrate the database."""
        if _postgres():
            _pg_admin(f'CREATE DATABASE "{self.db_name}"')
        self.manage("migrate", "--verbosity", "0")

    def close(self) -> None:
        """Drop the PostgreSQL database (a SQLite file goes with the temporary directory)."""
        if _postgres():
            _pg_admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def manage(self, *args: str, timeout: float = 180) -> str:
        """Run a management command of the project in a subprocess; returns its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            cwd=ROOT,
            timeout=timeout,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"manage {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def shell(self, code: str, timeout: float = 180) -> str:
        """Run Python code with Django set up (``manage.py shell -c``); returns its stdout."""
        return self.manage("shell", "-c", code, timeout=timeout)


def _command(kind: str, port: int) -> list[str]:
    if kind == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.e2e_project.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ws",
            "none",
            "--lifespan",
            "off",
            "--no-access-log",
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "1",
        ]
    if kind == "daphne":
        return [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "-v",
            "0",
            "tests.e2e_project.asgi:application",
        ]
    if kind == "gunicorn":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "tests.e2e_project.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--worker-class",
            "sync",
            "--preload",
            "--timeout",
            "60",
            "--graceful-timeout",
            "1",
            "--log-level",
            "warning",
        ]
    if kind == "runserver":
        return [
            sys.executable,
            "-m",
            "django",
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
            "--skip-checks",
        ]
    raise ValueError(f"unknown server {kind!r}: one of {ASGI_SERVERS + WSGI_SERVERS}")


@dataclass
class RunningServer:
    """A server process serving the e2e project."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until_serving(server: RunningServer, timeout: float = 60.0) -> None:
    """Wait until the server answers an HTTP request (any status), or raise with its log."""
    deadline = time.monotonic() + timeout
    probe = f"{server.url}/admin/login/"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}:\n{server.log()}"
            )
        try:
            urllib.request.urlopen(probe, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # an HTTP answer, whatever its status, means it serves
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{server.name} on port {server.port} did not start:\n{server.log()}")


def stop(server: RunningServer) -> None:
    """End the server's process group (SIGTERM, then SIGKILL after 5 s)."""
    # start_new_session made the server the leader of its own group (pgid == pid): this ends
    # it and anything it spawned, and nothing else.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=5)


@contextlib.contextmanager
def serve(kind: str, project: E2EProject, log_dir: Path) -> Iterator[RunningServer]:
    """Serve ``project`` with ``kind`` (uvicorn, daphne, runserver) until the block ends."""
    port = free_port()
    log_path = log_dir / f"{kind}-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _command(kind, port),
            cwd=ROOT,
            env=project.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(kind, port, process, log_path)
    try:
        wait_until_serving(server)
        yield server
    finally:
        stop(server)


# --- fixtures (module-scoped: each server starts once per test module) ---------------------


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
    project = E2EProject(
        tmp_path_factory.mktemp("e2e"),
        management_endpoint_url=e2e_endpoint.url,
        aws_endpoint_url=moto_server,
    )
    project.setup()
    try:
        yield project
    finally:
        project.close()


@pytest.fixture(scope="module", params=ASGI_SERVERS)
def e2e_server(
    request: pytest.FixtureRequest,
    e2e_project: E2EProject,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """The project under a real uvicorn and a real daphne (one test run each)."""
    with serve(request.param, e2e_project, tmp_path_factory.mktemp("logs")) as server:
        yield server


@pytest.fixture(scope="module", params=ASGI_SERVERS + WSGI_SERVERS)
def e2e_any_server(
    request: pytest.FixtureRequest,
    e2e_project: E2EProject,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """The project under uvicorn, daphne, runserver and gunicorn (WSGI, forked workers)."""
    with serve(request.param, e2e_project, tmp_path_factory.mktemp("logs")) as server:
        yield server
