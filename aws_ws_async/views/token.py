"""``WebSocketTokenView``: hands a logged-in browser a one-time token for ``$connect``.

Browsers cannot set headers on ``new WebSocket(url)``, so the page POSTs here (CSRF-protected,
same origin, session cookie) and appends the token to the ``wss://`` URL as ``?ws_token=``.
The token is bound to an HMAC of the browser's session key, so a leaked URL is useless without
the cookie, and verifiers accept ``SECRET_KEY_FALLBACKS`` so a key rotation voids nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from aws_ws_async.conf import get_settings, log_insecure_once
from aws_ws_async.models import WebSocketToken
from aws_ws_async.views import reasons
from aws_ws_async.views.responses import error_response

logger = logging.getLogger("aws_ws_async.views")


class WebSocketTokenView(View):
    """POST only. 200 ``{"token", "expires_in"}``; 401 anonymous; 429 over the user's limit."""

    http_method_names: ClassVar[list[str]] = ["post"]  # type: ignore[misc]

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        """CSRF-protected even where ``CsrfViewMiddleware`` is missing; never cached."""
        return never_cache(csrf_protect(super().as_view(**initkwargs)))

    async def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response, refusal = await self.issue(request)
        if refusal is not None:
            reasons.report_refusal(
                response, route="token", connection_id="", reason=refusal[0], cause=refusal[1]
            )
        return response

    async def issue(self, request: HttpRequest) -> tuple[HttpResponse, tuple[str, str] | None]:
        """The response, and ``(reason, cause)`` when it is a refusal (reported by ``post``)."""
        conf = get_settings()
        if conf.insecure:  # e.g. a bad token_expiry_seconds: never issue on a fallback
            log_insecure_once(conf)
            response = error_response(503, "unavailable", "Service unavailable")
            response._has_been_logged = True  # type: ignore[attr-defined]  # logged once
            return response, (reasons.MISCONFIGURED, "a security setting is invalid (see ERROR)")
        user = await self.get_user(request)
        if user is None:
            return error_response(401, "authentication_required", "Authentication required"), (
                reasons.AUTHENTICATION_REQUIRED,
                "no logged-in, active user on the request",
            )
        session = getattr(request, "session", None)
        session_key = getattr(session, "session_key", None)
        if session is None or not session_key:
            # Authenticated users always have a session; without one there is nothing to bind to.
            return error_response(401, "no_session", "A session is required"), (
                reasons.NO_SESSION,
                "the request has no session key to bind the token to",
            )
        raw = await WebSocketToken.aissue(
            user,
            session_key,
            expiry_seconds=conf.token_expiry_seconds,
            max_per_minute=conf.token_rate_limit_per_minute,
        )
        if raw is None:
            limit = conf.token_rate_limit_per_minute
            return error_response(
                429, "rate_limited", "Too many tokens requested", Retry_After="60"
            ), (reasons.RATE_LIMITED, f"user {user.pk} over {limit} tokens per minute")
        return JsonResponse({"token": raw, "expires_in": conf.token_expiry_seconds}), None

    async def get_user(self, request: HttpRequest) -> Any:
        """The authenticated, active user, or None (works without AuthenticationMiddleware)."""
        auser = getattr(request, "auser", None)
        if auser is not None:
            user = await auser()
        elif hasattr(request, "session"):
            from django.contrib.auth import aget_user

            user = await aget_user(request)
        else:
            logger.error("WebSocketTokenView needs SessionMiddleware")
            return None
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
            return None
        return user
