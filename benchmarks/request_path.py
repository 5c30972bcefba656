"""Request-path benchmark: ``WebSocketView`` routes against a trivial async Django view.

Run ``python -m benchmarks.request_path`` (``--help`` for flags). Requests go through Django's
real ``ASGIHandler`` in this process (session, CSRF, auth and common middleware installed, as
in a typical project), the way uvicorn or daphne would call it, without a socket in between so
the numbers are about Django and this package rather than the HTTP server.

Scenarios (each ``--requests`` requests at concurrency ``--concurrency``, interleaved and
repeated ``--repeat`` times; the table shows medians):

* ``baseline``: ``async def view(request): return JsonResponse({})``, the floor any Django view
  pays for the handler and middleware on this machine.
* ``message``: a message to a handler that does nothing (1 query before the handler).
* ``message_write``: the same with ``last_seen_interval_seconds=0``, i.e. one UPDATE per
  message as the predecessor did (its ``request_count`` bump).
* ``connect``: ``$connect`` with a one-time token, gateway cached.
* ``disconnect``: ``$disconnect`` of a connected session.

Columns: requests/s, mean latency, CPU time of this process per request, and SQL statements per
request. ``--json PATH`` also writes machine-readable results.

Django's ASGI handler runs each request's ORM calls in a fresh thread, so without a pool every
request that touches the database opens a connection (``CONN_MAX_AGE`` does not help across
threads). ``--db postgres --pool`` measures with Django's psycopg pool (``psycopg-pool``), which
is what a production ASGI deployment should use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._postgres import ensure_postgres_database

API_ID = "bench00001"
SECRET = "bench-gateway-secret-0123456789abcdefghij"
SCENARIOS = ("baseline", "message", "message_write", "connect", "disconnect")


def configure(
    db: str, workdir: str, pool: bool, conn_max_age: int = 0, async_database: bool = False
) -> None:
    """Settings for every benchmark of the request path; ``conn_max_age`` for the sync
    baseline (persistent connections, as the predecessor was deployed); ``async_database``
    for the ``async`` mode (the gateway routes' statements on the async psycopg path)."""
    import django
    from django.conf import settings

    if db == "postgres":
        database: dict[str, Any] = {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            "NAME": os.environ.get("BENCH_PG_NAME", "aws_ws_async_bench_views"),
        }
        if pool:  # Django's psycopg pool: ASGI requests stop paying a connection each
            database["OPTIONS"] = {"pool": {"min_size": 2, "max_size": 20}}
        else:
            database["CONN_MAX_AGE"] = conn_max_age
    else:
        database = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(Path(workdir) / "bench.sqlite3"),
        }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only-secret-key-0123456789abcdef0123456789",
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        ROOT_URLCONF=__name__,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "aws_ws_async",
        ],
        # The seven middleware of ``startproject``: what a typical project runs.
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        DATABASES={"default": database},
        AWS_WS_ASYNC={
            "gateway_secret": SECRET,
            "rate_limit_max_attempts": 10_000_000,
            "region_name": "us-east-1",
            "async_database": async_database,
        },
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        LOGGING_CONFIG=None,
    )
    django.setup()


# --- URLconf (this module is ROOT_URLCONF) --------------------------------------------------

urlpatterns: list[Any] = []
#: ``BenchView.as_view()``, set by ``build_urls`` (the fast entry point mounts it directly).
bench_view: Any = None


def build_urls() -> None:
    from django.http import HttpRequest, JsonResponse
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    from aws_ws_async.views import WebSocketView

    @csrf_exempt  # like WebSocketView, so both pay the same middleware
    async def baseline(request: HttpRequest) -> JsonResponse:
        return JsonResponse({})

    class BenchView(WebSocketView):
        async def noop(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
            return None

    global bench_view
    bench_view = BenchView.as_view()
    urlpatterns[:] = [
        path("ok", baseline),
        path("ws/<slug:route>", bench_view),
    ]


def build_sync_urls() -> None:
    """The baseline's URLs: the predecessor-style sync view and a trivial sync view."""
    from django.urls import path

    from benchmarks.predecessor_view import predecessor_view, trivial_view

    urlpatterns[:] = [path("ok", trivial_view), path("ws/<slug:route>", predecessor_view)]


# --- fixtures in the database ---------------------------------------------------------------


@dataclass
class World:
    session_key: str
    message_ids: list[str]
    tokens: list[str]
    disconnect_ids: list[str]


def build_world(requests: int, repeat: int) -> World:
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from aws_ws_async.hashing import hash_session_key, hash_user_auth
    from aws_ws_async.models import ApiGateway, WebSocketSession, WebSocketToken

    call_command("migrate", verbosity=0)
    WebSocketSession.objects.all().delete()
    WebSocketToken.objects.all().delete()
    ApiGateway.objects.filter(api_id=API_ID).delete()
    gateway = ApiGateway.objects.create(api_name="bench views", api_id=API_ID, stage_name="b")
    user_model = get_user_model()
    login = {user_model.USERNAME_FIELD: "bench@example.com"}  # works for any user model
    user_model._default_manager.filter(**login).delete()
    user = user_model._default_manager.create_user(**login, password="pw-bench-1")
    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    # A real login's session: $connect checks the token's session still authenticates the user.
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store.save()
    assert store.session_key is not None
    rounds = requests * repeat
    tokens = []
    for _ in range(rounds):
        raw = WebSocketToken.issue(
            user, store.session_key, expiry_seconds=3600, max_per_minute=10_000_000
        )
        assert raw is not None
        tokens.append(raw)
    auth = hash_user_auth(user)
    key_hash = hash_session_key(store.session_key)
    message_ids = [f"msg{i}=" for i in range(50)]
    disconnect_ids = [f"dis{i}=" for i in range(rounds)]
    WebSocketSession.objects.bulk_create(
        WebSocketSession(
            connection_id=cid,
            channel_name="bench",
            user=user,
            api_gateway=gateway,
            auth_hash=auth,
            session_key_hash=key_hash,
        )
        for cid in [*message_ids, *disconnect_ids]
    )
    return World(store.session_key, message_ids, tokens, disconnect_ids)


# --- driving the ASGI handler ---------------------------------------------------------------


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        with self._lock:
            self.count += 1
        return execute(sql, params, many, context)


async def call(app: Any, path: str, headers: dict[str, str], body: bytes, query: str) -> int:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    # API Gateway always sends Content-Length (0 on $connect/$disconnect); the view requires it.
    raw.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": raw,
        "client": ("10.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def gateway_headers(cid: str) -> dict[str, str]:
    return {
        "Host": "bench.example.com",
        "X-Forwarded-For": "198.51.100.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
        "X-Amzn-Trace-Id": "Root=1-00000000-000000000000000000000000",
        "X-Amzn-Apigateway-Api-Id": API_ID,
        "User-Agent": f"AmazonAPIGateway_{API_ID}",
        "Connectionid": cid,
        "X-Ws-Gateway-Secret": SECRET,
    }


RequestFactory = Callable[[int], tuple[str, dict[str, str], bytes, str]]


def scenario_requests(name: str, world: World) -> RequestFactory:
    message = json.dumps({"action": "noop"}).encode()
    tokens = iter(world.tokens)
    disconnects = iter(world.disconnect_ids)
    connect_count = iter(range(10**9))

    def baseline(i: int) -> tuple[str, dict[str, str], bytes, str]:
        return "/ok", {"Host": "bench.example.com"}, b"{}", ""

    def msg(i: int) -> tuple[str, dict[str, str], bytes, str]:
        return "/ws/default", gateway_headers(world.message_ids[i % 50]), message, ""

    def connect(i: int) -> tuple[str, dict[str, str], bytes, str]:
        headers = gateway_headers(f"con{next(connect_count)}=")
        headers.update(
            {
                "Origin": "https://bench.example.com",
                "Cookie": f"sessionid={world.session_key}",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            }
        )
        return "/ws/connect", headers, b"", f"ws_token={next(tokens)}&channel=bench"

    def disconnect(i: int) -> tuple[str, dict[str, str], bytes, str]:
        return "/ws/disconnect", gateway_headers(next(disconnects)), b"", ""

    return {
        "baseline": baseline,
        "message": msg,
        "message_write": msg,
        "connect": connect,
        "disconnect": disconnect,
    }[name]


@dataclass
class Run:
    requests: int
    wall: float
    cpu: float
    queries: int

    @property
    def rate(self) -> float:
        return self.requests / self.wall

    @property
    def latency_ms(self) -> float:
        return self.wall / self.requests * 1000

    @property
    def cpu_ms(self) -> float:
        return self.cpu / self.requests * 1000


async def run_scenario(
    app: Any, counter: QueryCounter, make: RequestFactory, requests: int, concurrency: int
) -> Run:
    gate = asyncio.Semaphore(concurrency)
    statuses: list[int] = []

    async def one(i: int) -> None:
        path, headers, body, query = make(i)
        async with gate:
            statuses.append(await call(app, path, headers, body, query))

    before = counter.count
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(requests)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    bad = [s for s in statuses if s != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} requests failed, e.g. status {bad[0]}")
    return Run(requests, wall, cpu, counter.count - before)


async def bench(args: argparse.Namespace, world: World) -> dict[str, dict[str, float]]:
    from django.core.handlers.asgi import ASGIHandler
    from django.db.backends.signals import connection_created
    from django.test.utils import override_settings

    from aws_ws_async.conf import reset_settings_cache
    from aws_ws_async.views.gateways import clear_gateway_cache

    counter = QueryCounter()

    def install(sender: Any, connection: Any, **kwargs: Any) -> None:
        connection.execute_wrappers.append(counter)

    connection_created.connect(install, weak=False)
    app = ASGIHandler()
    factories = {name: scenario_requests(name, world) for name in args.scenarios}
    runs: dict[str, list[Run]] = {name: [] for name in args.scenarios}
    clear_gateway_cache()
    for _ in range(args.repeat):
        for name in args.scenarios:
            conf = dict(settings_dict())
            if name == "message_write":
                conf["last_seen_interval_seconds"] = 0
            with override_settings(AWS_WS_ASYNC=conf):
                reset_settings_cache()
                runs[name].append(
                    await run_scenario(
                        app, counter, factories[name], args.requests, args.concurrency
                    )
                )
    reset_settings_cache()
    return {
        name: {
            "requests_per_s": statistics.median(r.rate for r in rs),
            "latency_ms": statistics.median(r.latency_ms for r in rs),
            "cpu_ms_per_request": statistics.median(r.cpu_ms for r in rs),
            "queries_per_request": statistics.median(r.queries / r.requests for r in rs),
        }
        for name, rs in runs.items()
    }


def settings_dict() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.AWS_WS_ASYNC)


def print_table(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    base = results.get("baseline", {}).get("cpu_ms_per_request")
    pool = " (pooled)" if args.pool else ""
    print(
        f"\nrequest path: {args.requests} requests x {args.repeat}, concurrency "
        f"{args.concurrency}, database {args.db}{pool}, Python {sys.version.split()[0]}"
    )
    header = (
        f"{'scenario':<15}{'req/s':>10}{'latency ms':>12}{'CPU ms/req':>12}"
        f"{'x baseline':>12}{'queries':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, row in results.items():
        ratio = row["cpu_ms_per_request"] / base if base else float("nan")
        print(
            f"{name:<15}{row['requests_per_s']:>10.0f}{row['latency_ms']:>12.2f}"
            f"{row['cpu_ms_per_request']:>12.2f}{ratio:>12.2f}{row['queries_per_request']:>9.1f}"
        )


def add_common_arguments(
    parser: argparse.ArgumentParser, *, requests: int, db: str, scenarios: tuple[str, ...]
) -> None:
    """The flags this benchmark and ``benchmarks.request_server`` share."""
    parser.add_argument("--requests", type=int, default=requests)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default=db)
    parser.add_argument(
        "--pool", action="store_true", help="PostgreSQL only: Django's psycopg pool"
    )
    parser.add_argument("--scenarios", nargs="+", choices=scenarios, default=list(scenarios))
    parser.add_argument("--json", type=Path, default=None)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, requests=300, db="sqlite", scenarios=SCENARIOS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        if args.db == "postgres":
            ensure_postgres_database("aws_ws_async_bench_views")
        configure(args.db, workdir, args.pool)
        build_urls()
        world = build_world(args.requests, args.repeat)
        results = asyncio.run(bench(args, world))
    print_table(results, args)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"params": vars(args) | {"json": str(args.json)}, "results": results}, indent=2
            )
            + "\n"
        )
        print(f"\nJSON written to {args.json}")


if __name__ == "__main__":
    main()
