"""The chat's WebSocket view: what API Gateway calls for $connect, messages and $disconnect.

Built-in handlers (``aws_ws_async.views.ChannelsMixin``, part of ``WebSocketView``):
``subscribe`` / ``unsubscribe`` (with ``since``: replay of what was missed), ``ping`` and
``presence``. Presence join/leave events are on for every room of the demo.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from aws_ws_async.channels import apublish
from aws_ws_async.models import ChannelSubscription, WebSocketSession
from aws_ws_async.views import WebSocketView


class ChatWebSocketView(WebSocketView):
    """Messages: ``{"action": "send_message", "message": "hi", "channel": "lobby"}`` (the
    channel defaults to the connection's first one; it must be one the connection joined)."""

    #: Who is online: join/leave frames to the room when a user's first tab opens or last closes.
    PRESENCE_EVENTS = True
    #: The longest chat message accepted, in characters.
    max_message_length = 2000

    async def after_connect(self, session: WebSocketSession) -> None:
        # Posted by a background task once API Gateway has opened the socket.
        self.send_after_connect(
            {
                "type": "welcome",
                "channel": session.channel_name,
                "connection": session.pk,
                "connection_id": session.connection_id,
            }
        )

    async def send_message(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Publish the text to the channel's subscribers (with a seq when history is on)."""
        text = self.body.get("message")
        if not isinstance(text, str) or not text.strip():
            return JsonResponse({"error": "empty message"}, status=400)
        session = self.websocket_session
        assert session is not None  # set by the view before any handler runs
        channel = self.body.get("channel") or session.channel_name
        if (
            not isinstance(channel, str)
            or not await ChannelSubscription.objects.filter(
                session=session, channel_name=channel
            ).aexists()
        ):
            return JsonResponse({"error": "not subscribed to that channel"}, status=403)
        author = getattr(request.user, "get_username", lambda: "")() or "anonymous"
        report = await apublish(
            channel,
            {
                "author": author,
                "message": text[: self.max_message_length],
                "sent_at": timezone.now().isoformat(),
            },
        )
        return JsonResponse({"seq": report.seq, "delivered": report.delivery.delivered_count})
