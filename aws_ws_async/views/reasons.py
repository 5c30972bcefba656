"""Stable reason codes for every refusal of the request path, and the one way they are reported.

A refusal (a 4xx/503 the view decides on, as opposed to a handler's own answer) logs exactly one
WARNING on ``aws_ws_async.views`` naming the route, the connection id, the reason code and the
specific cause (which header is missing, which origin was refused), with the same fields as
``extra`` (``route``, ``connection_id``, ``reason``, ``cause``, ``status_code``). A default Django
project shows WARNING on the console, so a new user sees *why* their first ``$connect`` failed.

With ``DEBUG=True`` the response also carries ``X-Aws-Ws-Async-Reason: <code>[:<cause>]`` (the
emulator prints it in its log line); with ``DEBUG=False`` nothing about the reason reaches the
client, because a refusal's details (which check, which origin) help an attacker probe.

The codes are part of the public API: log filters and alerting match on them. The same string
is stored in ``ConnectionRateLimit.reason`` for a refused ``$connect``. Table: ``docs/views.md``.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from django.conf import settings
from django.http import HttpResponse

from aws_ws_async import telemetry

logger = logging.getLogger("aws_ws_async.views")

#: The response header that carries the reason code when ``settings.DEBUG`` is on.
REASON_HEADER: Final = "X-Aws-Ws-Async-Reason"

# --- every route --------------------------------------------------------------------------
#: Method other than POST (405).
METHOD_NOT_ALLOWED: Final = "method_not_allowed"
#: A security setting is malformed; every request is refused (503, details logged at ERROR).
MISCONFIGURED: Final = "misconfigured"
#: The gateway secret header is absent or wrong (403).
INVALID_SECRET: Final = "invalid_secret"
#: A header API Gateway always sends (or a browser handshake header on ``$connect``) is missing.
MISSING_HEADER: Final = "missing_header"
#: ``X-Amzn-Apigateway-Api-Id`` is not the pinned id, or names no gateway row (403).
UNKNOWN_GATEWAY: Final = "unknown_gateway"
#: Body over ``MAX_BODY_SIZE`` (413).
PAYLOAD_TOO_LARGE: Final = "payload_too_large"
#: Body unreadable, bad ``Content-Length``, or a message that is not a JSON object (400).
INVALID_BODY: Final = "invalid_body"

# --- $connect -----------------------------------------------------------------------------
#: Malformed connection id header (400).
CONNECTION_ID: Final = "connection_id"
#: ``Host`` not in ``ALLOWED_HOSTS`` (400).
HOST: Final = "host"
#: ``Origin`` not the backend's host nor a trusted origin (403).
ORIGIN: Final = "origin"
#: ``CHECK_CONNECT_USERAGENT`` on and the User-Agent is not API Gateway's (400).
USERAGENT: Final = "useragent"
#: The channel name is not valid syntax (400).
INVALID_CHANNEL: Final = "invalid_channel"
#: No token, malformed, unknown, expired, spent, other browser session, or inactive user (401).
INVALID_TOKEN: Final = "invalid_token"
#: The token's browser session has ended (logout, flush, password change) (401).
SESSION_ENDED: Final = "session_ended"
#: The token was spent by a concurrent ``$connect`` between reading and spending it (401).
TOKEN_SPENT: Final = "token_spent"
#: Too many attempts from this IP bucket or user in the window (429).
RATE_LIMITED: Final = "rate_limited"
#: The channel's ``ChannelPermission`` (or ``ALLOW_UNLISTED_CHANNELS=False``) refuses the user.
CHANNEL_DENIED: Final = "channel_denied"
#: ``permissions_required`` / ``all_permissions_required`` not met (403).
PERMISSION_DENIED: Final = "permission_denied"
#: ``additional_connection_checks`` returned False (403).
HOOK: Final = "hook"
#: The connection id is already registered (409).
DUPLICATE: Final = "duplicate"

# --- messages and $disconnect ---------------------------------------------------------------
#: The message names no handler (400).
HANDLER_MISSING: Final = "handler_missing"
#: The message names a handler that is not allowed or not a method (404).
UNKNOWN_HANDLER: Final = "unknown_handler"
#: No connected session with this id on this gateway (401).
UNKNOWN_CONNECTION: Final = "unknown_connection"
#: The session's user is inactive or changed password; the connection is being closed (401).
USER_INVALID: Final = "user_invalid"
#: ``subscribe`` past the view's ``MAX_SUBSCRIPTIONS`` for one connection (409).
TOO_MANY_SUBSCRIPTIONS: Final = "too_many_subscriptions"

# --- the token view -------------------------------------------------------------------------
#: The token view's caller is anonymous or inactive (401).
AUTHENTICATION_REQUIRED: Final = "authentication_required"
#: An authenticated caller without a session key to bind the token to (401).
NO_SESSION: Final = "no_session"

#: Every code, for docs and tests (``docs/views.md`` lists exactly these).
ALL_REASONS: Final = frozenset(
    {
        METHOD_NOT_ALLOWED,
        MISCONFIGURED,
        INVALID_SECRET,
        MISSING_HEADER,
        UNKNOWN_GATEWAY,
        PAYLOAD_TOO_LARGE,
        INVALID_BODY,
        CONNECTION_ID,
        HOST,
        ORIGIN,
        USERAGENT,
        INVALID_CHANNEL,
        INVALID_TOKEN,
        SESSION_ENDED,
        TOKEN_SPENT,
        RATE_LIMITED,
        CHANNEL_DENIED,
        PERMISSION_DENIED,
        HOOK,
        DUPLICATE,
        HANDLER_MISSING,
        UNKNOWN_HANDLER,
        UNKNOWN_CONNECTION,
        USER_INVALID,
        TOO_MANY_SUBSCRIPTIONS,
        AUTHENTICATION_REQUIRED,
        NO_SESSION,
    }
)

#: Longest cause kept (a cause may quote client input such as an Origin).
MAX_CAUSE = 200
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def clean_cause(cause: object) -> str:
    """Printable ASCII, truncated: safe in a log line and in a header value (no CR/LF)."""
    return _UNPRINTABLE.sub("?", str(cause))[:MAX_CAUSE]


def report_refusal(
    response: HttpResponse, *, route: str, connection_id: str, reason: str, cause: str
) -> None:
    """Log the refusal once at WARNING; in DEBUG also name it in ``REASON_HEADER``."""
    cause = clean_cause(cause)
    cid = clean_cause(connection_id) or "-"
    logger.warning(
        "refused %s for connection %s: %s (%s) -> %s",
        route or "-",
        cid,
        reason,
        cause or "no detail",
        response.status_code,
        extra={
            "route": route,
            "connection_id": cid,
            "reason": reason,
            "cause": cause,
            "status_code": response.status_code,
        },
    )
    telemetry.refusal(route, reason)
    if settings.DEBUG:
        response[REASON_HEADER] = f"{reason}:{cause}" if cause else reason
