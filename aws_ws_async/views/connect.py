"""The ``$connect`` flow of ``WebSocketView``.

Cheap checks that need no database come first (headers, connection id, Host, Origin, channel
syntax, token syntax); each refusal is still counted with one INSERT into the rate-limit table.
Then, with a one-time token (the default), at most seven queries on the happy path (eight when
the gateway is not cached yet):

1. read the token with its user and the channel's access level (one SELECT with a subquery),
2. read the browser session the token is bound to: it must still exist and still authenticate
   the token's user with a valid session auth hash (logout, flush, password change void it),
3. + 4. rate limit: INSERT this attempt, then count the window (insert-then-count: atomic),
   then the channel policy (read in step 1), view permissions and the overridable hook,
5. spend the token: a conditional UPDATE whose row count decides (no row locks),
6. INSERT the session row and its first channel's subscription, in one transaction (a
   savepoint when the caller holds one: ``ATOMIC_REQUESTS``, a ``TestCase``), so a duplicate
   connection id is a clean 409.

The token is spent only after every other check passed, so a refused attempt never burns it;
a duplicate connection id (409) gives the token back with a conditional UPDATE.
Per-IP buckets group IPv6 clients by ``ipv6_rate_limit_prefix`` (one /64 is one subscriber).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from aws_ws_async.asyncdb import AsyncDatabase
from aws_ws_async.conf import get_settings
from aws_ws_async.hashing import hash_session_key, hash_user_auth
from aws_ws_async.models import (
    ConnectionRateLimit,
    WebSocketSession,
    WebSocketToken,
)
from aws_ws_async.security import client_ip, host_allowed, origin_allowed, rate_limit_bucket
from aws_ws_async.validators import TOKEN_RE, is_valid_connection_id
from aws_ws_async.views import connect_async, reasons
from aws_ws_async.views.access import AccessMixin
from aws_ws_async.views.connect_db import (
    Finish,
    channel_policy,
    finish_connect,
    keeps_default_hooks,
    read_token,
    spend_and_insert,
)
from aws_ws_async.views.gateways import aget_gateway

logger = logging.getLogger("aws_ws_async.views")


class ConnectMixin(AccessMixin):
    """``$connect``: decide whether API Gateway may open the socket, and record it."""

    USE_WS_TOKEN: bool = True
    RATE_LIMIT_ENABLED: bool = True
    #: 0 means "use settings" (``rate_limit_max_attempts`` / ``rate_limit_window_minutes``).
    RATE_LIMIT_MAX_ATTEMPTS: int = 0
    RATE_LIMIT_WINDOW_MINUTES: int = 0
    #: Check ``permissions_required`` / ``all_permissions_required`` on connect too (the
    #: predecessor did not by default, so users without them still received broadcasts).
    CHECK_PERMISSIONS_ON_CONNECT: bool = True
    CHECK_CONNECT_USERAGENT: bool = False
    expected_useragent_prefix: str = "AmazonAPIGateway_"
    #: Handshake headers a browser always sends, forwarded by API Gateway on ``$connect``.
    required_connection_headers: list[str] = [
        "Origin",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
    ]
    channel_query_param: str = "channel"
    token_query_param: str = "ws_token"
    #: Extra allowed origins, in ``CSRF_TRUSTED_ORIGINS`` format (``https://*.example.com``).
    allowed_origins: list[str] = []
    #: Also trust ``settings.CSRF_TRUSTED_ORIGINS`` (the origins your forms already trust).
    trust_csrf_trusted_origins: bool = True
    #: Accept Origins on sub-domains of the backend's Host (off: see docs/security.md).
    allow_origin_subdomains: bool = False

    client_ip: str | None = None
    #: The rate-limit bucket of ``client_ip``: the address, or its IPv6 network.
    rate_limit_ip: str | None = None
    _attempt: ConnectionRateLimit | None = None
    #: The async database path of this ``$connect`` (``connect_async``), None: the sync path.
    _async_db: AsyncDatabase | None = None

    # --- hooks ---------------------------------------------------------------------------

    async def additional_connection_checks(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> bool | tuple[bool, str]:
        """Override for extra checks; return False or ``(False, "why")`` to refuse (403).

        ``request.user``, ``self.channel_name`` and ``self.api_gateway`` are set.
        """
        return True

    async def after_connect(self, session: WebSocketSession) -> None:
        """Called once the session row exists; queue a welcome with ``send_after_connect``."""

    def get_allowed_origins(self) -> list[str]:
        origins = list(self.allowed_origins)
        if self.trust_csrf_trusted_origins:
            origins.extend(getattr(settings, "CSRF_TRUSTED_ORIGINS", []))
        return origins

    def rate_limit_settings(self) -> tuple[int, timedelta]:
        conf = get_settings()
        attempts = self.RATE_LIMIT_MAX_ATTEMPTS or conf.rate_limit_max_attempts
        minutes = self.RATE_LIMIT_WINDOW_MINUTES or conf.rate_limit_window_minutes
        return attempts, timedelta(minutes=minutes)

    # --- the flow ------------------------------------------------------------------------

    async def connect(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        conf = get_settings()
        self.client_ip = client_ip(request.headers.get("X-Forwarded-For"), conf.trusted_proxy_count)
        self.rate_limit_ip = rate_limit_bucket(self.client_ip, conf.ipv6_rate_limit_prefix)

        refusal = await self._check_handshake(request)
        if refusal is not None:
            return refusal

        gateway = await aget_gateway(self.api_id)
        if gateway is None and not self.aws_api_gateway_id:
            return await self._refuse(
                reasons.UNKNOWN_GATEWAY,
                await self.unknown_gateway(request),
                f"no gateway row with api id {self.api_id!r}",
            )
        self.api_gateway = gateway

        channel = request.GET.get(self.channel_query_param, "")
        if not channel and gateway is not None:
            channel = gateway.default_channel_name
        if channel and not self.is_valid_channel(channel):
            self.debug_message("invalid channel name")
            return await self._refuse(
                reasons.INVALID_CHANNEL,
                await self.invalid_channel(request),
                f"channel name {channel!r} is not valid",
            )
        self.channel_name = channel

        token: WebSocketToken | None = None
        checked: tuple[bool, ConnectionRateLimit] | None = None
        finished: tuple[str, WebSocketSession | None] | None = None
        if self.USE_WS_TOKEN:
            token, why, live, checked, finished = await self._load_token(request, channel)
            if token is None:
                return await self._refuse(
                    reasons.INVALID_TOKEN, await self.invalid_token(request), why
                )
            if not live:
                self.debug_message("the token's browser session has ended")
                return await self._refuse(
                    reasons.SESSION_ENDED,
                    await self.invalid_token(request),
                    "the token's browser session has ended (logout or password change)",
                )
            user: Any = token.user
        else:
            user = await self._cookie_user(request)

        if self.RATE_LIMIT_ENABLED:
            attempts, window = self.rate_limit_settings()
            if checked is None:  # with a token it ran in the token's thread hop
                checked = await ConnectionRateLimit.arecord_and_check(
                    self.rate_limit_ip, user, max_attempts=attempts, window=window
                )
            allowed, self._attempt = checked
            if not allowed:
                retry = int(window.total_seconds())
                return await self._refuse(
                    reasons.RATE_LIMITED,
                    await self.rate_limited(request, retry),
                    f"over {attempts} attempts in {window} from {self.rate_limit_ip} or its user",
                )

        self.set_user(request, user)
        if finished is None:
            refusal = await self._check_access(request, *args, **kwargs)
            if refusal is not None:
                return refusal
            # Spent last, just before the session row: no refusal above burns the token.
            # Both writes share one thread hop; a 409 gives the token back (it is a refusal).
            row = self._session_row(request, user, channel)
            outcome = None
            if self._async_db is not None:
                outcome = await connect_async.aspend_and_insert(self._async_db, token, row)
            if outcome is None:
                outcome = await sync_to_async(spend_and_insert)(token, row)
        else:  # the default checks, the spend and the INSERTs ran in the token's hop
            outcome, fused_row = finished
            if outcome == reasons.CHANNEL_DENIED or fused_row is None:
                return await self._channel_denied(request)
            row = fused_row
        if outcome == reasons.TOKEN_SPENT:
            return await self._refuse(
                reasons.TOKEN_SPENT,
                await self.invalid_token(request),
                "the token was spent by a concurrent $connect",
            )
        if outcome == reasons.DUPLICATE:
            return await self._refuse(
                reasons.DUPLICATE,
                await self.duplicate_connection(request),
                "a session row with this connection id exists",
            )
        self.websocket_session = row
        await self.after_connect(row)
        return JsonResponse({})

    async def _check_handshake(self, request: HttpRequest) -> HttpResponse | None:
        """Checks of the handshake headers; no database work except counting a refusal."""
        missing = self.find_missing_headers(list(self.required_connection_headers))
        if missing:
            self.debug_message(f"missing connection headers: {', '.join(missing)}")
            return await self._refuse(
                reasons.MISSING_HEADER,
                await self.missing_headers(request, missing),
                ",".join(missing),
            )
        if not is_valid_connection_id(self.connection_id):
            return await self._refuse(
                reasons.CONNECTION_ID,
                await self.invalid_connection_id(request),
                "the connection id header is malformed",
            )
        host = request.META.get("HTTP_HOST", "")
        if not host_allowed(host, self.allowed_hosts()):
            return await self._refuse(
                reasons.HOST,
                await self.invalid_host(request),
                f"Host {host!r} is not in ALLOWED_HOSTS",
            )
        origin = request.headers.get("Origin")
        if not origin_allowed(
            origin,
            host=host,
            trusted_origins=self.get_allowed_origins(),
            allow_subdomains=self.allow_origin_subdomains,
        ):
            self.debug_message("origin not allowed")
            return await self._refuse(
                reasons.ORIGIN,
                await self.invalid_origin(request),
                f"Origin {origin!r} is neither the Host nor a trusted origin",
            )
        if self.CHECK_CONNECT_USERAGENT:
            expected = f"{self.expected_useragent_prefix}{self.api_id}"
            if request.headers.get("User-Agent", "") != expected:
                return await self._refuse(
                    reasons.USERAGENT,
                    await self.invalid_useragent(request),
                    f"User-Agent is not {expected!r}",
                )
        return None

    async def _load_token(
        self, request: HttpRequest, channel: str
    ) -> tuple[
        WebSocketToken | None,
        str,
        bool,
        tuple[bool, ConnectionRateLimit] | None,
        tuple[str, WebSocketSession | None] | None,
    ]:
        """``(token, "", live, checked, finished)``: the unspent token bound to this browser
        session, with its user and channel policy, whether that session still authenticates
        the user, for a live token with the rate limit on the rate limit's ``(allowed,
        attempt)``, and, when this view's checks after the rate limit are the default ones
        (``_fused_checks``), the outcome of those checks, the spend and the INSERTs with the
        session row; ``(None, why, False, None, None)`` when there is none (``why`` is the
        refusal's cause). All of it runs in one thread hop (a hop costs about as much CPU as
        a simple query), in the order the checks are made."""
        raw = request.GET.get(self.token_query_param, "")
        session_key = self._session_key(request)
        if not raw:
            return None, f"no {self.token_query_param} query parameter", False, None, None
        if TOKEN_RE.fullmatch(raw) is None:
            return None, f"the {self.token_query_param} parameter is malformed", False, None, None
        if not session_key:
            cookie = settings.SESSION_COOKIE_NAME
            return None, f"no {cookie} cookie to bind the token to", False, None, None
        rate = None
        if self.RATE_LIMIT_ENABLED:
            rate = (self.rate_limit_ip, *self.rate_limit_settings())
        finish: Finish | None = None
        if self._fused_checks():

            def finish(token: WebSocketToken) -> tuple[str, WebSocketSession | None]:
                def make_row(user: Any) -> WebSocketSession:
                    return self._session_row(request, user, channel)

                return finish_connect(token, channel, self.ALLOW_UNLISTED_CHANNELS, make_row)

        self._async_db = connect_async.database_for(self.model, channel, session_key)
        if self._async_db is not None:  # no hop: the checks are awaited between the statements
            read = await connect_async.aread_token(self._async_db, raw, session_key, channel, rate)
        else:
            read = await sync_to_async(read_token)(raw, session_key, channel, rate, finish)
        token = read.token
        if token is None:
            why = "token unknown, expired, spent or of another browser session"
            return None, why, False, None, None
        if not token.user.is_active:
            return None, "the token's user is inactive", False, None, None
        if channel:
            self._channel_policy = (channel, channel_policy(token, channel))
        return token, "", read.live, read.checked, read.finished

    def _fused_checks(self) -> bool:
        """Whether the checks after the rate limit are the default ones and need no query of
        their own (no view permissions to check), so they, the spend and the INSERTs can run
        in the token's thread hop: one hop fewer, the same statements in the same order."""
        if self.CHECK_PERMISSIONS_ON_CONNECT and (
            self.all_permissions_required or self.permissions_required
        ):
            return False
        return keeps_default_hooks(type(self), ConnectMixin)

    @staticmethod
    def _session_key(request: HttpRequest) -> str:
        return str(request.COOKIES.get(settings.SESSION_COOKIE_NAME, ""))

    async def _cookie_user(self, request: HttpRequest) -> Any:
        """The session user, when tokens are off (needs the session + auth middleware)."""
        auser = getattr(request, "auser", None)
        if auser is None:
            return None
        user = await auser()
        return user if getattr(user, "is_authenticated", False) else None

    async def _channel_denied(self, request: HttpRequest) -> HttpResponse:
        return await self._refuse(
            reasons.CHANNEL_DENIED,
            await self.permission_denied(request),
            f"the policy of channel {self.channel_name!r} refuses the user",
        )

    async def _check_access(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        user = request.user
        if self.channel_name and not await self.can_join_channel(user, self.channel_name):
            return await self._channel_denied(request)
        if self.CHECK_PERMISSIONS_ON_CONNECT and not await self.has_required_permissions(user):
            return await self._refuse(
                reasons.PERMISSION_DENIED,
                await self.permission_denied(request),
                "the user lacks the view's permissions_required/all_permissions_required",
            )
        result = await self.additional_connection_checks(request, *args, **kwargs)
        ok, message = result if isinstance(result, tuple) else (result, "")
        if not ok:
            return await self._refuse(
                reasons.HOOK,
                await self.connection_refused(request, message),
                f"additional_connection_checks refused: {message or 'no message'}",
            )
        return None

    def _session_row(self, request: HttpRequest, user: Any, channel: str) -> WebSocketSession:
        """The session row to INSERT (not saved yet)."""
        session_key = self._session_key(request)
        return self.model(
            connection_id=self.connection_id,
            channel_name=channel,
            user=user,
            api_gateway=self.api_gateway,
            session_key_hash=hash_session_key(session_key) if session_key else "",
            auth_hash=hash_user_auth(user) if user is not None else "",
        )

    async def _refuse(self, reason: str, response: HttpResponse, cause: str = "") -> HttpResponse:
        """Count the refused attempt (it weighs on the rate limit like any other) and record
        ``reason`` (a code of ``reasons``) for the one WARNING ``post`` logs."""
        self.refuse_because(reason, cause)
        if self.RATE_LIMIT_ENABLED:
            if self._attempt is not None:
                await self._attempt.amark_refused(reason)
            else:
                await ConnectionRateLimit.arecord_refusal(self.rate_limit_ip, None, reason)
        return response
