"""Run a Django project under real servers on 127.0.0.1, for end-to-end tests.

The Django test client runs a sync view in the test's own thread; uvicorn and daphne run it
through ``sync_to_async(thread_sensitive=True)`` on a per-request executor, and runserver in a
WSGI worker thread. Only a real server shows how our sync bridge behaves there, so these
helpers start one as a subprocess:

* :class:`E2EProject` builds the environment (database, moto URL, ``@connections`` URL) of
  ``tests/e2e_project`` and migrates a database of its own: a SQLite file, or with
  ``AWS_WS_ASYNC_TEST_DB=postgres`` a fresh PostgreSQL database dropped again by
  :meth:`E2EProject.close`. :class:`DemoProject` does the same for the example project
  (``example/demo_project``, configured by its ``DEMO_*`` variables), so a test can serve what
  users copy. Which modules, directory and import path a project needs is its
  :class:`ProjectLayout`.
* :func:`serve` starts ``uvicorn``, ``daphne``, ``runserver`` or ``gunicorn`` on a free port,
  waits until it answers HTTP, and ends its whole process group on exit (output goes to a log
  file, never a pipe nobody reads, and is attached to the error when the server fails to
  start).
* :func:`gateway_headers` is what API Gateway's HTTP_PROXY integration sends, and
  :func:`wait_until` polls a condition (e.g. the ``@connections`` endpoint received a post).
* The module-scoped fixtures live in ``tests/fixtures_e2e.py`` (registered for every module):
  ``e2e_endpoint``, ``e2e_project``, ``e2e_server`` (parametrized over :data:`ASGI_SERVERS`),
  ``e2e_any_server`` (ASGI plus runserver and gunicorn), ``e2e_demo_project`` and
  ``e2e_demo_server`` (the example project under each ASGI server).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example"
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


@dataclass(frozen=True)
class ProjectLayout:
    """Where a project lives: what a server imports, from which directory and import path."""

    settings_module: str
    asgi_app: str
    #: ``None``: the project has no WSGI module, so it can't be served by gunicorn.
    wsgi_app: str | None
    cwd: Path
    pythonpath: tuple[Path, ...]


E2E_LAYOUT = ProjectLayout(
    SETTINGS_MODULE,
    "tests.e2e_project.asgi:application",
    "tests.e2e_project.wsgi:application",
    ROOT,
    (ROOT,),
)
#: The example project, imported as users run it (``cd example``; ``demo_project``, ``chat``).
DEMO_LAYOUT = ProjectLayout(
    "demo_project.settings", "demo_project.asgi:application", None, EXAMPLE, (ROOT, EXAMPLE)
)


@dataclass
class E2EProject:
    """The e2e project's environment and its own migrated database."""

    layout: ClassVar[ProjectLayout] = E2E_LAYOUT

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
        path = os.pathsep.join(
            [*map(str, self.layout.pythonpath), os.environ.get("PYTHONPATH", "")]
        )
        env = {
            **os.environ,
            "PYTHONPATH": path,
            "DJANGO_SETTINGS_MODULE": self.layout.settings_module,
            **self.project_env(postgres, _pg_params()),
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

    def project_env(self, postgres: bool, pg: dict[str, str]) -> dict[str, str]:
        """The variables the project's settings read: database, endpoints, gateway secret."""
        return {
            "E2E_DB_ENGINE": "postgres" if postgres else "sqlite",
            "E2E_DB_NAME": self.db_name,
            "E2E_PG_HOST": pg["host"],
            "E2E_PG_PORT": pg["port"],
            "E2E_PG_USER": pg["user"],
            "E2E_PG_PASSWORD": pg["password"],
            "E2E_MANAGEMENT_ENDPOINT_URL": self.management_endpoint_url,
            "E2E_AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "E2E_GATEWAY_SECRET": GATEWAY_SECRET,
        }

    def setup(self) -> None:
        """Create (PostgreSQL) and migrate the database."""
        if _postgres():
            _pg_admin(f'CREATE DATABASE "{self.db_name}"')
        self.manage("migrate", "--verbosity", "0")

    def close(self) -> None:
        """Drop the PostgreSQL database (a SQLite file goes with the temporary directory)."""
        if _postgres():
            _pg_admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def __enter__(self) -> Self:
        """``with E2EProject(...) as project:`` sets up, and always closes again: also when the
        migration fails after the PostgreSQL database was created, so no database is left."""
        try:
            self.setup()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def manage(self, *args: str, timeout: float = 180) -> str:
        """Run a management command of the project in a subprocess; returns its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            cwd=self.layout.cwd,
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

    def shell_json(self, code: str, timeout: float = 180) -> Any:
        """Run ``code`` like :meth:`shell` and decode the JSON its last printed line holds."""
        lines = self.shell(code, timeout=timeout).strip().splitlines()
        if not lines:
            raise RuntimeError(f"the shell printed nothing; code:\n{code}")
        return json.loads(lines[-1])


@dataclass
class DemoProject(E2EProject):
    """The example project (``example/demo_project``) with a database of its own.

    Its settings are read from ``DEMO_*`` variables, as a user would set them; ``DEBUG`` off
    and only the loopback hosts allowed, like a deployment. ``aws_endpoint_url`` is unused
    (the demo provisions nothing in the tests).
    """

    layout: ClassVar[ProjectLayout] = DEMO_LAYOUT

    def project_env(self, postgres: bool, pg: dict[str, str]) -> dict[str, str]:
        return {
            "DEMO_DB_ENGINE": "postgres" if postgres else "sqlite",
            "DEMO_DB_NAME": self.db_name,
            "DEMO_DB_HOST": pg["host"],
            "DEMO_DB_PORT": pg["port"],
            "DEMO_DB_USER": pg["user"],
            "DEMO_DB_PASSWORD": pg["password"],
            "DEMO_DEBUG": "0",
            "DEMO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEMO_GATEWAY_SECRET": GATEWAY_SECRET,
            "DEMO_MANAGEMENT_ENDPOINT_URL": self.management_endpoint_url,
            "DEMO_LOG_LEVEL": "WARNING",
        }


#: Each server's flags besides the application and the port: quiet, fast to stop, no
#: WebSocket or lifespan support (API Gateway speaks plain HTTP to the project).
_FLAGS = {
    "uvicorn": "--host 127.0.0.1 --ws none --lifespan off --no-access-log --log-level warning"
    " --timeout-graceful-shutdown 1",
    "daphne": "-b 127.0.0.1 -v 0",
    "gunicorn": "--workers 2 --worker-class sync --preload --timeout 60 --graceful-timeout 1"
    " --log-level warning",
    "runserver": "--noreload --skip-checks",
}


def _command(kind: str, port: int, layout: ProjectLayout = E2E_LAYOUT) -> list[str]:
    python = [sys.executable, "-m", kind]
    flags = _FLAGS.get(kind, "").split()
    if kind == "uvicorn":
        return [*python, layout.asgi_app, "--port", str(port), *flags]
    if kind == "daphne":
        return [*python, "-p", str(port), *flags, layout.asgi_app]
    if kind == "gunicorn":
        if layout.wsgi_app is None:
            raise ValueError(f"{layout.settings_module} has no WSGI module for gunicorn")
        return [*python, layout.wsgi_app, "--bind", f"127.0.0.1:{port}", *flags]
    if kind == "runserver":
        return [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", *flags]
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

    @property
    def host(self) -> str:
        """The ``Host`` header a request to this server carries."""
        return f"127.0.0.1:{self.port}"

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
    """Serve ``project`` with ``kind`` (one of :data:`ASGI_SERVERS` + :data:`WSGI_SERVERS`)
    until the block ends."""
    port = free_port()
    log_path = log_dir / f"{kind}-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _command(kind, port, project.layout),
            cwd=project.layout.cwd,
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


def websocket_key() -> str:
    """A fresh ``Sec-WebSocket-Key`` (16 random bytes, base64), as a browser sends."""
    return base64.b64encode(os.urandom(16)).decode()


def gateway_headers(
    server: RunningServer,
    connection_id: str,
    *,
    api_id: str,
    secret: str = GATEWAY_SECRET,
    session_key: str | None = None,
) -> dict[str, str]:
    """What API Gateway's HTTP_PROXY integration sends to ``server`` (with the mapped id and
    secret). With ``session_key`` they are ``$connect``'s: the browser's Origin, session cookie
    and WebSocket handshake headers too."""
    headers = {
        "Host": server.host,
        "X-Forwarded-For": "198.51.100.20",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
        "X-Amzn-Trace-Id": "Root=1-6740a1b2-0123456789abcdef01234567",
        "X-Amzn-Apigateway-Api-Id": api_id,
        "User-Agent": f"AmazonAPIGateway_{api_id}",
        "Connectionid": connection_id,
        "X-Ws-Gateway-Secret": secret,
    }
    if session_key is not None:
        headers.update(
            {
                "Origin": f"http://{server.host}",
                "Cookie": f"sessionid={session_key}",
                "Sec-WebSocket-Key": websocket_key(),
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
            }
        )
    return headers


async def wait_until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll ``predicate`` every 20 ms until it is true; ``TimeoutError`` after ``timeout`` s.

    A server answers before its background work (a post to ``@connections``) is done, so a
    test waits for the effect instead of sleeping a guessed time.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)
