"""Fixtures and test views for the request path (WebSocketView, WebSocketTokenView).

Requests carry the headers API Gateway's HTTP_PROXY integration really sends (see
``shared/reference/aws-websocket-api.md`` section 4): ``X-Amzn-Apigateway-Api-Id``,
``X-Forwarded-For/Proto/Port``, ``X-Amzn-Trace-Id``, ``User-Agent: AmazonAPIGateway_<apiId>``,
the mapped ``Connectionid`` and secret headers, and on ``$connect`` the browser's handshake
headers (``Origin``, ``Cookie``, ``Sec-WebSocket-*``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from aws_ws_async.models import WebSocketSession
from aws_ws_async.views import WebSocketView
from aws_ws_async.views.gateways import clear_gateway_cache

API_ID = "abc123def4"  # the conftest ``gateway`` fixture's api_id
GATEWAY_SECRET = "test-gateway-secret-0123456789abcdefABCDEF"
OLD_GATEWAY_SECRET = "old-gateway-secret-0123456789abcdefABCDEF"
HOST = "example.com"
ORIGIN = "https://example.com"
CLIENT_IP = "203.0.113.7"


# --- views mounted by tests/urls.py -------------------------------------------------------


class EchoView(WebSocketView):
    """A view with async, sync and failing handlers, and helpers that must not be callable."""

    ADDITIONAL_ALLOWED_HANDLERS = ["change_channel"]

    async def echo(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        user = request.user
        return {
            "body": self.body,
            "user": user.pk if user.is_authenticated else None,
            "connection": self.websocket_session.connection_id if self.websocket_session else "",
        }

    def sync_echo(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Plain ``def`` handlers run in a thread, so the sync ORM is allowed here.
        count = WebSocketSession.objects.filter(connected=True).count()
        return JsonResponse({"sync": True, "connected": count})

    async def whoami(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        user = await request.auser()  # type: ignore[attr-defined]
        return {
            "auser": user.pk if user.is_authenticated else None,
            "channel": self.channel_name,
            "route": kwargs.get("route"),
        }

    async def nothing(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        return None

    async def boom(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals: do not leak")

    @staticmethod
    def static_helper(*args: Any) -> str:
        return "never callable"

    @classmethod
    def class_helper(cls, *args: Any) -> str:
        return "never callable"

    def _private(self, request: HttpRequest) -> str:
        return "never callable"

    #: How often ``prop``'s getter ran: a message naming it must not run it.
    prop_reads = 0

    @property
    def prop(self) -> Any:
        type(self).prop_reads += 1
        return self.echo

    async def after_connect(self, session: WebSocketSession) -> None:
        if session.channel_name == "welcome":
            self.send_after_connect({"type": "welcome", "id": session.connection_id})


class PermissionView(EchoView):
    permissions_required = ["testapp.view_emailuser", "testapp.change_emailuser"]


class AllPermissionView(EchoView):
    all_permissions_required = ["testapp.view_emailuser", "testapp.change_emailuser"]
    CHECK_PERMISSIONS_ON_CONNECT = False


class FallbackView(EchoView):
    FALLBACK_TO_DEFAULT_HANDLER = True

    async def default(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, str]:
        return {"handled_by": "default"}


class ExplicitView(EchoView):
    ALLOWED_HANDLERS = {
        "echo",
        "connect",
        "dispatch",
        "_private",
        "static_helper",
        "class_helper",
        "prop",
        "missing",
    }


class DefaultView(EchoView):
    """Overrides ``default`` without the fallback opt-in."""

    async def default(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, str]:
        return {"handled_by": "default"}


class NoTokenView(EchoView):
    USE_WS_TOKEN = False
    ALLOW_UNLISTED_CHANNELS = True


class HookView(EchoView):
    async def additional_connection_checks(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> bool | tuple[bool, str]:
        if self.channel_name == "blocked":
            return False, "This channel is closed"
        return True


class StrictChannelsView(EchoView):
    ALLOW_UNLISTED_CHANNELS = False


class PinnedGatewayView(EchoView):
    """The predecessor's ``aws_api_gateway_id``: the API id header must equal it."""

    aws_api_gateway_id = "pinned0001"


class SubdomainView(EchoView):
    allow_origin_subdomains = True
    allowed_origins = ["https://*.trusted.test"]


#: Extra URLs for tests marked ``@pytest.mark.urls("tests.fixtures_views")``.
urlpatterns = [
    path("ws/<slug:route>", EchoView.as_view()),
    path("ws-default/<slug:route>", DefaultView.as_view()),
]


# --- request helpers ----------------------------------------------------------------------


def websocket_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def new_connection_id() -> str:
    """API Gateway's connection ids look like ``Jx1bEcl3IAMCJ_A=``."""
    return base64.urlsafe_b64encode(os.urandom(10)).decode()[:-1] + "="


def gateway_headers(
    connection_id: str,
    *,
    api_id: str = API_ID,
    secret: str | None = GATEWAY_SECRET,
    connect: bool = False,
    origin: str | None = ORIGIN,
    forwarded_for: str = CLIENT_IP,
    host: str = HOST,
) -> dict[str, str]:
    headers = {
        "Host": host,
        "X-Forwarded-For": forwarded_for,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "443",
        "X-Amzn-Trace-Id": f"Root=1-{secrets.token_hex(4)}-{secrets.token_hex(12)}",
        "X-Amzn-Apigateway-Api-Id": api_id,
        "User-Agent": f"AmazonAPIGateway_{api_id}",
        "Connectionid": connection_id,
    }
    if secret is not None:
        headers["X-Ws-Gateway-Secret"] = secret
    if connect:
        headers["Sec-WebSocket-Key"] = websocket_key()
        headers["Sec-WebSocket-Version"] = "13"
        headers["Sec-WebSocket-Extensions"] = "permessage-deflate; client_max_window_bits"
        if origin is not None:
            headers["Origin"] = origin
    return headers


@dataclass
class Browser:
    """A logged-in browser: its session cookie and a way to get one-time tokens."""

    user: Any
    session_key: str
    tokens: list[str] = field(default_factory=list)

    def cookie(self) -> str:
        return f"{django_settings.SESSION_COOKIE_NAME}={self.session_key}"

    def new_token(self, expiry_seconds: int = 60) -> str:
        from aws_ws_async.models import WebSocketToken

        raw = WebSocketToken.issue(
            self.user, self.session_key, expiry_seconds=expiry_seconds, max_per_minute=10_000
        )
        assert raw is not None
        self.tokens.append(raw)
        return raw

    async def anew_token(self, expiry_seconds: int = 60) -> str:
        from aws_ws_async.models import WebSocketToken

        raw = await WebSocketToken.aissue(
            self.user, self.session_key, expiry_seconds=expiry_seconds, max_per_minute=10_000
        )
        assert raw is not None
        self.tokens.append(raw)
        return raw


def login_browser(user: Any) -> Browser:
    """A real database session for ``user``, as ``django.contrib.auth.login`` would make."""
    from importlib import import_module

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    store = import_module(django_settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return Browser(user=user, session_key=store.session_key)


@dataclass
class Response:
    """What the ASGI server would have written back to API Gateway."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


_application: Any = None


def asgi_app() -> Any:
    global _application
    if _application is None:
        from django.core.handlers.asgi import ASGIHandler

        _application = ASGIHandler()
    return _application


def reset_asgi_app() -> None:
    """Rebuild the handler (after a test changed MIDDLEWARE)."""
    global _application
    _application = None


async def post(
    path: str,
    headers: dict[str, str],
    body: bytes | str = b"",
    *,
    method: str = "POST",
    query: str | bytes = "",
    extra_raw_headers: Sequence[tuple[bytes, bytes]] = (),
) -> Response:
    """Send one integration request through Django's real ASGI handler, byte for byte.

    Django's test clients add their own ``Host`` and ``Cookie`` headers; API Gateway's requests
    carry exactly the headers given here, so the scope is built by hand. ``Content-Length`` is
    added (``0`` for an empty body) unless given, as API Gateway, aiohttp, uvicorn and daphne
    all do; ``"Content-Length": ""`` in ``headers`` sends none.
    ``extra_raw_headers`` are appended as they are (repeated names, raw bytes).
    """
    if isinstance(body, str):
        body = body.encode()
    raw_headers = [
        (name.lower().encode("latin1"), value.encode("latin1"))
        for name, value in headers.items()
        if not (name.lower() == "content-length" and value == "")
    ]
    if not any(name.lower() == "content-length" for name in headers):
        raw_headers.append((b"content-length", str(len(body)).encode()))
    raw_headers.extend(extra_raw_headers)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query if isinstance(query, bytes) else query.encode("latin1"),
        "root_path": "",
        "headers": raw_headers,
        "client": ("10.0.0.9", 41234),
        "server": ("127.0.0.1", 8000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asgi_app()(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    response_headers = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    return Response(start["status"], response_headers, content)


async def connect(
    browser: Browser | None,
    connection_id: str,
    *,
    path: str = "/ws/connect",
    channel: str | None = None,
    token: str | None = None,
    **header_kwargs: Any,
) -> Response:
    headers = gateway_headers(connection_id, connect=True, **header_kwargs)
    query = []
    if browser is not None:
        headers["Cookie"] = browser.cookie()
        query.append(f"ws_token={token if token is not None else await browser.anew_token()}")
    if channel is not None:
        query.append(f"channel={channel}")
    return await post(path, headers, query="&".join(query))


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def ws_settings(settings: Any) -> Any:
    """Secret on, generous limits; tests that probe a limit lower it themselves."""
    settings.AWS_WS_ASYNC = {
        **getattr(settings, "AWS_WS_ASYNC", {}),
        "gateway_secret": [GATEWAY_SECRET, OLD_GATEWAY_SECRET],
        "rate_limit_max_attempts": 1000,
        "token_rate_limit_per_minute": 1000,
    }
    return settings


@pytest.fixture(autouse=True)
def _fresh_gateway_cache() -> Iterator[None]:
    clear_gateway_cache()
    yield
    clear_gateway_cache()


@pytest.fixture
def browser(user: Any) -> Browser:
    return login_browser(user)


@pytest.fixture
def skip_unless_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (real concurrent transactions)")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """``@pytest.mark.postgres_only`` tests are skipped on other databases."""
    if os.environ.get("AWS_WS_ASYNC_TEST_DB", "sqlite").lower() in {"postgres", "postgresql", "pg"}:
        return
    marker = pytest.mark.skip(reason="needs PostgreSQL (AWS_WS_ASYNC_TEST_DB=postgres)")
    for item in items:
        if item.get_closest_marker("postgres_only"):
            item.add_marker(marker)


class QueryLog:
    """Records the SQL of every connection opened while installed, whatever its thread.

    Django's ASGI handler runs each request's ORM calls in a fresh thread (its own
    ``ThreadSensitiveContext``), so ``CaptureQueriesContext`` bound to the test's thread would
    see nothing; this wrapper is installed on each connection as it is created.
    """

    def __init__(self) -> None:
        self.queries: list[str] = []
        self._lock = threading.Lock()
        self._active = False

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self._active:
            with self._lock:
                self.queries.append(sql)
        return execute(sql, params, many, context)

    def install_here(self) -> None:
        """Also wrap the connections of the calling thread (run via ``sync_to_async``)."""
        from django.db import connections

        for conn in connections.all():
            if self not in conn.execute_wrappers:
                conn.execute_wrappers.append(self)

    @contextmanager
    def recording(self) -> Iterator[list[str]]:
        """Queries made inside the block (a list filled as they happen)."""
        start = len(self.queries)
        captured: list[str] = []
        self._active = True
        try:
            yield captured
        finally:
            self._active = False
            captured.extend(self.queries[start:])


@pytest.fixture
def query_log() -> Iterator[QueryLog]:
    log = QueryLog()

    def install(sender: Any, connection: Any, **kwargs: Any) -> None:
        if log not in connection.execute_wrappers:
            connection.execute_wrappers.append(log)

    connection_created.connect(install, weak=False, dispatch_uid="tests.query_log")
    try:
        yield log
    finally:
        connection_created.disconnect(dispatch_uid="tests.query_log")


# --- the fast entry point and the thread-hop spy (test_views_asgi, test_connect_*) ----------


@pytest.fixture
def fast_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Route the request helpers through the fast handler (``/ws/`` only)."""
    from aws_ws_async.views.asgi import GatewayASGIHandler

    handler = GatewayASGIHandler({"/ws/": EchoView.as_view()})
    monkeypatch.setattr(sys.modules[__name__], "_application", handler)
    yield handler
    handler.threads.shutdown()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the sync functions each ``sync_to_async`` call ran (a spy, nothing changed)."""
    from asgiref.sync import SyncToAsync

    calls: list[str] = []
    original = SyncToAsync.__call__

    async def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(self.func, "__qualname__", None)  # never repr(): a queryset would query
        calls.append(name or type(self.func).__name__)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", spy)
    return calls
