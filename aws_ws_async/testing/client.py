"""A small async WebSocket client for end-to-end tests and scripts, as a browser would connect.

It does what the demo page does, over real HTTP and a real socket: logs in (through the
project's login form with a username and password, or directly from a user object as Django's
``Client.force_login`` does), POSTs to the token view with the CSRF cookie and header, opens
the socket through the gateway (the emulator, or a real stage) with the session cookie and an
``Origin`` the view accepts, then sends and receives JSON::

    async with WebSocketTestClient(emulator.url, live_server.url, user=user) as ws:
        await ws.send_json({"action": "send_message", "message": "hi"})
        reply = await ws.receive_json(timeout=5)

Failures raise :class:`WebSocketClientError` subclasses that say which step failed and what
the server answered, instead of a bare handshake error. The ``ws_client`` pytest fixture
(:mod:`aws_ws_async.testing.pytest_plugin`) builds clients pointed at ``ws_gateway_emulator``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

import aiohttp
from asgiref.sync import sync_to_async
from django.conf import settings
from django.shortcuts import resolve_url


class WebSocketClientError(Exception):
    """A step of the client failed; the message names the step and the server's answer."""


class LoginFailed(WebSocketClientError):
    """The login form did not log the user in."""


class TokenRefused(WebSocketClientError):
    """The token view refused (``status``: 401 not logged in, 403 CSRF, 429 rate limit)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"the token view answered {status}: {body[:200]}")
        self.status = status


class ConnectRefused(WebSocketClientError):
    """The gateway refused the socket (``$connect`` answered ``status``)."""

    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"$connect to {url} was refused with {status}")
        self.status = status


class ConnectionClosed(WebSocketClientError):
    """The socket closed while a message was awaited (``code``: e.g. 1009 message too big)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"the socket closed with code {code}" + (f": {reason}" if reason else ""))
        self.code = code
        self.reason = reason


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class WebSocketTestClient:
    """One browser-like connection: login, token, socket. Use as an async context manager.

    ``gateway_url`` is the socket's URL (``emulator.url``: ``ws://127.0.0.1:PORT/STAGE``),
    ``backend_url`` the Django site's root (where the login and token views live). Give
    ``user`` (a session is created in the database, no password needed) or ``username`` and
    ``password`` (posted to ``settings.LOGIN_URL``, or ``login_path``), or neither for an
    anonymous socket (views with ``USE_WS_TOKEN = False``).
    """

    def __init__(
        self,
        gateway_url: str,
        backend_url: str,
        *,
        user: Any = None,
        username: str | None = None,
        password: str | None = None,
        channel: str | None = None,
        token_path: str = "/ws-token/",  # noqa: S107 - a URL path, not a password
        login_path: str | None = None,
        origin: str | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if user is not None and username is not None:
            raise TypeError("pass either user or username/password, not both")
        self.gateway_url = gateway_url
        self.backend_url = backend_url.rstrip("/")
        self.user = user
        self.username = username
        self.password = password
        self.channel = channel
        self.token_path = token_path
        self.login_path = login_path
        self.origin = origin or _origin(backend_url)
        self.query = dict(query or {})
        self.headers = dict(headers or {})
        self.cookies: dict[str, str] = {"csrftoken": secrets.token_hex(16)}
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    # --- the steps -----------------------------------------------------------------------

    async def login(self) -> None:
        """Get a session cookie: from ``user`` directly, or through the login form."""
        name = settings.SESSION_COOKIE_NAME
        if self.user is not None:
            from aws_ws_async.testing.local_gateway import login_session

            self.cookies[name] = await sync_to_async(login_session)(self.user)
            return
        if self.username is None:
            return
        path = self.login_path or str(resolve_url(settings.LOGIN_URL))
        form = {
            "username": self.username,
            "password": self.password or "",
            "csrfmiddlewaretoken": self.cookies["csrftoken"],
        }
        async with self._session().post(
            self.backend_url + path,
            data=form,
            headers={"Cookie": self._cookie_header(), "Referer": self.backend_url + path},
            allow_redirects=False,
        ) as response:
            morsel = response.cookies.get(name)
            if response.status not in {301, 302, 303} or morsel is None or not morsel.value:
                raise LoginFailed(
                    f"logging in {self.username!r} at {path} answered {response.status} without "
                    "a session cookie (wrong password, or not a Django login form?)"
                )
            self.cookies[name] = morsel.value

    async def fetch_token(self) -> str:
        """POST the token view with the CSRF cookie and header, as the page's script does."""
        async with self._session().post(
            self.backend_url + self.token_path,
            headers={"Cookie": self._cookie_header(), "X-CSRFToken": self.cookies["csrftoken"]},
        ) as response:
            body = await response.text()
            if response.status != 200:
                raise TokenRefused(response.status, body)
            return str(json.loads(body)["token"])

    async def connect(self) -> Self:
        """Log in, fetch a token (when logged in) and open the socket."""
        await self.login()
        query = dict(self.query)
        if self.channel is not None:
            query["channel"] = self.channel
        if settings.SESSION_COOKIE_NAME in self.cookies:
            query["ws_token"] = await self.fetch_token()
        url = self.gateway_url + (f"?{urlencode(query)}" if query else "")
        headers = {"Cookie": self._cookie_header(), "Origin": self.origin, **self.headers}
        try:
            self._ws = await self._session().ws_connect(url, headers=headers, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            raise ConnectRefused(exc.status, self.gateway_url) from exc
        return self

    async def send_json(self, data: Any) -> None:
        """Send one JSON text frame (e.g. ``{"action": "send_message", ...}``)."""
        await self._socket().send_str(json.dumps(data))

    async def send_text(self, text: str) -> None:
        """Send a raw text frame (to test how a view answers malformed input)."""
        await self._socket().send_str(text)

    async def receive_json(self, timeout: float = 5.0) -> Any:  # noqa: ASYNC109 - the API
        """The next text frame, decoded; ``TimeoutError`` after ``timeout`` seconds, and
        :class:`ConnectionClosed` (with the close code) if the socket closes first."""
        ws = self._socket()
        try:
            message = await asyncio.wait_for(ws.receive(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no message within {timeout} s") from None
        if message.type == aiohttp.WSMsgType.TEXT:
            return json.loads(message.data)
        if message.type == aiohttp.WSMsgType.BINARY:
            return json.loads(message.data.decode())
        raise ConnectionClosed(ws.close_code, str(message.extra or ""))

    @property
    def close_code(self) -> int | None:
        """The close code once the socket is closed (None while open)."""
        return self._ws.close_code if self._ws is not None else None

    async def close(self) -> None:
        """Close the socket (the gateway posts ``$disconnect``) and the HTTP session."""
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> Self:
        try:
            return await self.connect()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- plumbing ------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        # Cookies are sent by hand (aiohttp's jar ignores cookies of IP hosts like 127.0.0.1).
        if self._http is None:
            self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._http

    def _socket(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is None:
            raise WebSocketClientError("not connected: use 'async with' or await connect()")
        return self._ws

    def _cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())
