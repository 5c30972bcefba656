"""Messages and ``$disconnect`` for ``WebSocketView``.

A message costs one query before its handler: the connected session of this gateway, joined
with its user and gateway. ``last_seen_at`` is refreshed by a second, conditional UPDATE at
most once per ``last_seen_interval_seconds`` (the predecessor wrote ``request_count`` on every
message). The handler name is resolved against the allow-list *before* the query, so junk
costs no database work.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from aws_ws_async import telemetry
from aws_ws_async.conf import get_settings
from aws_ws_async.hashing import matches_any, user_auth_hashes
from aws_ws_async.models import DisconnectReason, WebSocketSession
from aws_ws_async.validators import is_valid_connection_id
from aws_ws_async.views import reasons
from aws_ws_async.views.access import AccessMixin
from aws_ws_async.views.background import spawn
from aws_ws_async.views.base import BodyError
from aws_ws_async.views.handlers import bound_handler
from aws_ws_async.views.session_loader import (
    aload_and_disconnect,
    aload_session,
    atouch_last_seen,
)

logger = logging.getLogger("aws_ws_async.views")


class MessagesMixin(AccessMixin):
    """Message routing, ``default`` and ``$disconnect`` (``change_channel``: views/channels.py)."""

    # --- routing -------------------------------------------------------------------------

    def select_handler_name(self, body: dict[str, Any]) -> tuple[str | None, bool]:
        """``(name, named)``: the handler key, else the route key; ``named`` if either exists."""
        for key in (self.handler_selection_key, self.route_selection_key):
            if key in body:
                value = body[key]
                return (value if isinstance(value, str) else None), True
        return None, False

    async def message(
        self, request: HttpRequest, raw: bytes, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        try:
            self.body = self.parse_message(raw)
        except BodyError as error:
            self.debug_message("message body is not a JSON object")
            self.refuse_because(reasons.INVALID_BODY, error.cause)
            return await self.invalid_body(request)
        name, named = self.select_handler_name(self.body)
        allowed = self.get_allowed_handlers()
        if name is None:
            if named:
                self.refuse_because(reasons.UNKNOWN_HANDLER, "the handler name is not a string")
                return await self.unknown_handler(request, "")
            # The predecessor refused a message naming no handler (400); only the explicit
            # fallback opt-in sends it to ``default``.
            if not (self.FALLBACK_TO_DEFAULT_HANDLER and "default" in allowed):
                keys = f"{self.handler_selection_key!r} or {self.route_selection_key!r}"
                self.refuse_because(reasons.HANDLER_MISSING, f"the body has no {keys} key")
                return await self.handler_selection_key_missing(request)
            name = "default"
        elif name not in allowed:
            if not (self.FALLBACK_TO_DEFAULT_HANDLER and "default" in allowed):
                self.refuse_because(
                    reasons.UNKNOWN_HANDLER, f"handler {name[:64]!r} is not allowed"
                )
                return await self.unknown_handler(request, name)
            name = "default"
        handler = bound_handler(self, name)
        if handler is None:
            self.refuse_because(
                reasons.UNKNOWN_HANDLER, f"listed handler {name[:64]!r} is not a method"
            )
            return await self.unknown_handler(request, name)

        session = await self.load_session()
        if session is None:
            self.refuse_because(reasons.UNKNOWN_CONNECTION, self.unknown_connection_cause())
            return await self.session_not_found(request)
        user = session.user
        if user is not None and not await self.user_still_valid(session, user):
            self.refuse_because(
                reasons.USER_INVALID, "user inactive or password changed: closing the connection"
            )
            spawn(self.close_session(session), f"aws_ws_async.close:{session.connection_id}")
            return await self.session_not_found(request)
        self.websocket_session = session
        self.api_gateway = session.api_gateway
        self.channel_name = session.channel_name
        self.set_user(request, user)
        if not await self.has_required_permissions(request.user):
            self.refuse_because(
                reasons.PERMISSION_DENIED,
                "the user lacks the view's permissions_required/all_permissions_required",
            )
            return await self.permission_denied(request)
        await self.touch_last_seen(session)
        telemetry.annotate_request(route="default", handler=name)
        return await self.call_handler(handler, request, *args, **kwargs)

    async def load_session(self) -> WebSocketSession | None:
        """The connected session with this id on this gateway, with user and gateway (1 query).

        A malformed id cannot exist, so it costs no query.
        """
        if not is_valid_connection_id(self.connection_id):
            return None
        # The same query as select_related(...).filter(...).afirst(), compiled once per model
        # and database (session_loader.py): compiling it was a third of a message's CPU.
        return await aload_session(
            self.model, self.api_id, self.connection_id, bool(self.aws_api_gateway_id)
        )

    def unknown_connection_cause(self) -> str:
        """Why ``load_session`` found nothing, for the refusal's log line (no query)."""
        if not is_valid_connection_id(self.connection_id):
            return "the connection id header is malformed"
        return f"no connected session with this id on api {self.api_id!r}"

    async def user_still_valid(self, session: WebSocketSession, user: Any) -> bool:
        """Active, and the password has not changed since connecting (key fallbacks honoured)."""
        if not user.is_active:
            return False
        return matches_any(session.auth_hash, user_auth_hashes(user))

    async def close_session(self, session: WebSocketSession) -> None:
        """Stop sending to the session at once, then close the socket via @connections.

        The row is marked first so broadcasts skip it even if the DELETE fails (the next
        message would be refused again anyway).
        """
        await session.amark_disconnected(DisconnectReason.USER_INVALID)
        report = await session.adisconnect(reason=DisconnectReason.USER_INVALID)
        if report.failed:
            logger.warning("could not close connection %s: %s", session.connection_id, report)

    async def touch_last_seen(self, session: WebSocketSession) -> None:
        """Refresh ``last_seen_at`` at most once per interval (a conditional UPDATE)."""
        interval = timedelta(seconds=get_settings().last_seen_interval_seconds)
        now = timezone.now()
        if now - session.last_seen_at < interval:
            return
        await atouch_last_seen(self.model, session.pk, now, now - interval)
        session.last_seen_at = now

    # --- base handlers -------------------------------------------------------------------

    async def default(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Override to handle messages that name no (known) handler."""
        self.refuse_because(reasons.UNKNOWN_HANDLER, "the view does not override default")
        return await self.unknown_handler(request, "default")

    # --- $disconnect ---------------------------------------------------------------------

    async def disconnect(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Mark the session disconnected (read it, flag it: in one thread hop, or on the loop
        with ``async_database``) and run the hook."""
        now = timezone.now()
        session, changed = None, 0
        if is_valid_connection_id(self.connection_id):
            session, changed = await aload_and_disconnect(
                self.model, self.api_id, self.connection_id, bool(self.aws_api_gateway_id), now
            )
        if session is None:
            self.refuse_because(reasons.UNKNOWN_CONNECTION, self.unknown_connection_cause())
            return await self.session_not_found(request)
        if not changed:  # a concurrent close won the race
            self.refuse_because(
                reasons.UNKNOWN_CONNECTION, "the session was closed by a concurrent request"
            )
            return await self.session_not_found(request)
        session.connected = False
        session.disconnected_at = now
        session.disconnect_reason = DisconnectReason.CLIENT
        self.websocket_session = session
        self.api_gateway = session.api_gateway
        self.set_user(request, session.user)
        await self.after_disconnect(session)
        return JsonResponse({})

    async def after_disconnect(self, session: WebSocketSession) -> None:
        """Override for clean-up or presence broadcasts after a client left."""
