"""The built-in channel handlers of ``WebSocketView``: subscribe, unsubscribe, ping, presence.

They are on by default (``CHANNEL_HANDLERS``); a view switches them off with
``CHANNEL_HANDLERS = frozenset()`` (or a subset), narrows them with ``BASE_HANDLERS``, or
overrides one by defining a method of the same name. With an explicit ``ALLOWED_HANDLERS`` only
the ones listed there are callable, like every other handler.

Each handler answers API Gateway quickly (200, a small JSON body that only reaches API Gateway's
logs); what the *client* must see (``subscribed``, ``unsubscribed``, replayed history, presence
snapshots and events) is posted through ``@connections`` by a background task
(:func:`~aws_ws_async.views.background.spawn`), as welcome messages are.

Presence events (``PRESENCE_EVENTS = True``) are sent around ``connect`` / ``disconnect`` here,
after the parent flow succeeded, never through the user's ``after_connect`` hook.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from aws_ws_async.channels import history, subscriptions
from aws_ws_async.channels.events import Event, aannounce
from aws_ws_async.channels.presence import apresence
from aws_ws_async.models import WebSocketSession
from aws_ws_async.views import reasons
from aws_ws_async.views.background import spawn
from aws_ws_async.views.connect import ConnectMixin
from aws_ws_async.views.handlers import is_plain_method
from aws_ws_async.views.messages import MessagesMixin
from aws_ws_async.views.responses import error_response

logger = logging.getLogger("aws_ws_async.views")

#: The handlers this mixin provides.
BUILTIN_CHANNEL_HANDLERS = frozenset({"subscribe", "unsubscribe", "ping", "presence"})


class ChannelsMixin(ConnectMixin, MessagesMixin):
    """Many channels per connection, presence and the idle-timeout ping."""

    #: Built-in handlers callable without listing (a subset switches the others off).
    CHANNEL_HANDLERS: ClassVar[frozenset[str]] = BUILTIN_CHANNEL_HANDLERS
    BASE_HANDLERS: ClassVar[frozenset[str] | set[str]] = frozenset(
        {"default", "change_channel", *BUILTIN_CHANNEL_HANDLERS}
    )
    #: Channels one connection may be subscribed to at once (its first channel included).
    MAX_SUBSCRIPTIONS: int = 50
    #: Broadcast presence ``join`` / ``leave`` events to a channel's subscribers.
    PRESENCE_EVENTS: bool = False
    #: User field (or lookup) shown in presence; None: ``USERNAME_FIELD`` (``get_username()``).
    PRESENCE_DISPLAY_FIELD: str | None = None

    _channel_handler_cache: ClassVar[dict[type, frozenset[str]]] = {}

    @classmethod
    def get_allowed_handlers(cls) -> frozenset[str]:
        """The parent's allow-list plus the enabled built-ins (cached per class)."""
        cached = cls._channel_handler_cache.get(cls)
        if cached is None:
            allowed = super().get_allowed_handlers()
            builtins = set(cls.CHANNEL_HANDLERS) & set(cls.BASE_HANDLERS)
            builtins &= BUILTIN_CHANNEL_HANDLERS
            if cls.ALLOWED_HANDLERS:  # explicit: only what is listed
                builtins &= set(cls.ALLOWED_HANDLERS)
            cached = allowed | {name for name in builtins if is_plain_method(cls, name)}
            cls._channel_handler_cache[cls] = cached
        return cached

    # --- hooks ---------------------------------------------------------------------------

    def presence_events_for(self, channel: str) -> bool:
        """Whether ``channel`` gets join/leave events (override to decide per channel)."""
        return self.PRESENCE_EVENTS

    def presence_name(self, user: Any) -> str:
        """How ``user`` is shown in presence events (matches the snapshot's display field)."""
        field = self.PRESENCE_DISPLAY_FIELD
        if field is None:
            return str(user.get_username())
        value: Any = user
        for part in field.split("__"):
            value = getattr(value, part, None)
        return "" if value is None else str(value)

    # --- connect / disconnect: presence events -------------------------------------------

    async def connect(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = await super().connect(request, *args, **kwargs)
        session = self.websocket_session
        if response.status_code == 200 and session is not None and session.channel_name:
            self._announce(session, [session.channel_name], "join", request.user)
        return response

    async def disconnect(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = await super().disconnect(request, *args, **kwargs)
        session = self.websocket_session
        if (
            response.status_code == 200
            and session is not None
            and session.user_id is not None
            and self._presence_possible()
        ):
            spawn(
                self._leave_all(session, request.user),
                f"aws_ws_async.presence:{session.connection_id}",
            )
        return response

    def _presence_possible(self) -> bool:
        """Events on, or decided per channel by an override (then the channels are read)."""
        overridden = type(self).presence_events_for is not ChannelsMixin.presence_events_for
        return self.PRESENCE_EVENTS or overridden

    async def _leave_all(self, session: WebSocketSession, user: Any) -> None:
        channels = await sync_to_async(subscriptions.channels_of)(session)
        for channel in channels:
            if self.presence_events_for(channel):
                await aannounce(session, channel, "leave", self.presence_name(user))

    def _announce(
        self, session: WebSocketSession, channels: list[str], event: Event, user: Any
    ) -> None:
        wanted = [c for c in channels if self.presence_events_for(c)]
        if not wanted or session.user_id is None:
            return
        name = self.presence_name(user)

        async def announce() -> None:
            for channel in wanted:
                await aannounce(session, channel, event, name)

        spawn(announce(), f"aws_ws_async.presence:{session.connection_id}")

    # --- handlers ------------------------------------------------------------------------

    async def _checked_channel(self, request: HttpRequest) -> str | HttpResponse:
        channel = self.body.get("channel")
        if not isinstance(channel, str) or not self.is_valid_channel(channel):
            self.refuse_because(
                reasons.INVALID_CHANNEL, f"channel name {str(channel)[:64]!r} is not valid"
            )
            return await self.invalid_channel(request)
        return channel

    async def _joinable_channel(self, request: HttpRequest) -> str | HttpResponse:
        channel = await self._checked_channel(request)
        if isinstance(channel, HttpResponse):
            return channel
        if not await self.can_join_channel(request.user, channel):
            self.refuse_because(
                reasons.CHANNEL_DENIED, f"the policy of channel {channel!r} refuses the user"
            )
            return await self.permission_denied(request)
        return channel

    async def _channel_and_session(
        self, request: HttpRequest, *, joinable: bool = False
    ) -> tuple[str, WebSocketSession] | HttpResponse:
        """``body["channel"]`` checked (and, ``joinable``, allowed) with this connection's row.

        Every channel handler starts with these two steps; one place keeps their refusals and
        their order (the channel is judged before the session is looked at) the same.
        """
        if joinable:
            channel = await self._joinable_channel(request)
        else:
            channel = await self._checked_channel(request)
        if isinstance(channel, HttpResponse):
            return channel
        session = self.websocket_session
        if session is None:  # pragma: no cover - dispatch always sets it
            return await self.session_not_found(request)
        return channel, session

    async def subscribe(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Add ``body["channel"]`` (checked like ``$connect``); replay after ``since``."""
        since = self.body.get("since")
        if since is not None and (
            isinstance(since, bool)
            or not isinstance(since, int)
            or not 0 <= since <= history.MAX_SEQ
        ):
            self.refuse_because(reasons.INVALID_BODY, f"since must be an int >= 0, not {since!r}")
            return error_response(400, "invalid_since", "since must be an integer >= 0")
        checked = await self._channel_and_session(request, joinable=True)
        if isinstance(checked, HttpResponse):
            return checked
        channel, session = checked
        outcome = await sync_to_async(subscriptions.subscribe)(
            session, channel, self.MAX_SUBSCRIPTIONS
        )
        if outcome is subscriptions.Subscribed.FULL:
            self.refuse_because(
                reasons.TOO_MANY_SUBSCRIPTIONS,
                f"the connection is subscribed to MAX_SUBSCRIPTIONS={self.MAX_SUBSCRIPTIONS}",
            )
            return await self.too_many_subscriptions(request)
        join = outcome is subscriptions.Subscribed.CREATED and self.presence_events_for(channel)
        name = self.presence_name(request.user) if join and session.user_id else ""
        spawn(
            self._after_subscribe(session, channel, since, name),
            f"aws_ws_async.subscribe:{session.connection_id}",
        )
        return JsonResponse({"subscribed": channel, "created": outcome.value == "created"})

    async def _after_subscribe(
        self, session: WebSocketSession, channel: str, since: int | None, join_as: str
    ) -> None:
        """Replay (history on), then ``subscribed``, then tell the others (join event)."""
        seq = await areplay_or_latest(session, channel, since)
        frame: dict[str, Any] = {"type": "subscribed", "channel": channel}
        if seq is not None:
            frame["seq"] = seq
        await session.asend_message(frame)
        if join_as:
            await aannounce(session, channel, "join", join_as)

    async def unsubscribe(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Leave ``body["channel"]`` (the first channel too; ``channel_name`` is kept)."""
        checked = await self._channel_and_session(request)
        if isinstance(checked, HttpResponse):
            return checked
        channel, session = checked
        removed = await sync_to_async(subscriptions.unsubscribe)(session, channel)
        leave = removed and self.presence_events_for(channel) and session.user_id is not None
        name = self.presence_name(request.user) if leave else ""

        async def confirm() -> None:
            await session.asend_message({"type": "unsubscribed", "channel": channel})
            if name:
                await aannounce(session, channel, "leave", name)

        spawn(confirm(), f"aws_ws_async.unsubscribe:{session.connection_id}")
        return JsonResponse({"unsubscribed": channel, "removed": removed})

    async def ping(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Keep-alive under API Gateway's 10-minute idle timeout: 200, nothing else.

        The message path has already refreshed ``last_seen_at`` (at most once per interval),
        which is what keeps the connection in presence and out of the reaper's doubtful set.
        """
        return JsonResponse({})

    async def presence(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Post a presence snapshot of ``body["channel"]`` (the connection must be in it)."""
        checked = await self._channel_and_session(request)
        if isinstance(checked, HttpResponse):
            return checked
        channel, session = checked
        if not await session.subscriptions.filter(channel_name=channel).aexists():
            self.refuse_because(
                reasons.CHANNEL_DENIED, f"the connection is not subscribed to {channel!r}"
            )
            return await self.permission_denied(request)
        snapshot = await apresence(
            channel, session._state.db, display_field=self.PRESENCE_DISPLAY_FIELD
        )
        spawn(
            session.asend_message(snapshot.frame()),
            f"aws_ws_async.presence:{session.connection_id}",
        )
        return JsonResponse({"count": snapshot.count, "connections": snapshot.connections})

    async def change_channel(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Move this connection's first channel to ``body["channel"]`` (exposed only when
        listed/overridden); its subscription row moves with it, other subscriptions stay."""
        checked = await self._channel_and_session(request, joinable=True)
        if isinstance(checked, HttpResponse):
            return checked
        channel, session = checked
        await sync_to_async(subscriptions.change_channel)(session, channel)
        self.channel_name = channel
        return JsonResponse({"channel": channel})

    async def too_many_subscriptions(self, request: HttpRequest) -> HttpResponse:
        """The connection is at ``MAX_SUBSCRIPTIONS`` (409; unsubscribe something first)."""
        return error_response(409, "too_many_subscriptions", "Too many subscriptions")


async def areplay_or_latest(
    session: WebSocketSession, channel: str, since: int | None
) -> int | None:
    """Replay history after ``since``; the channel's latest seq, or None with history off.

    Without ``since`` the client wants no replay, only the baseline (``latest_seq``) its next
    resume will ask from.
    """
    if since is None:
        return await history.alatest_seq(channel, using=session._state.db)
    result = await history.areplay(session, channel, since)
    return result.latest_seq
