"""The chat's WebSocket view: what API Gateway calls for $connect, messages and $disconnect."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from aws_ws_async.models import WebSocketSession
from aws_ws_async.views import WebSocketView


class ChatWebSocketView(WebSocketView):
    """Messages: ``{"action": "send_message", "message": "hi"}`` and
    ``{"action": "change_channel", "channel": "room-2"}``."""

    ADDITIONAL_ALLOWED_HANDLERS = ["change_channel"]
    #: The longest chat message accepted, in characters.
    max_message_length = 2000

    async def after_connect(self, session: WebSocketSession) -> None:
        # Posted by a background task once API Gateway has opened the socket.
        self.send_after_connect(
            {"type": "welcome", "channel": session.channel_name, "connection": session.pk}
        )

    async def send_message(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Broadcast the text to everyone connected to the sender's channel."""
        text = self.body.get("message")
        if not isinstance(text, str) or not text.strip():
            return JsonResponse({"error": "empty message"}, status=400)
        session = self.websocket_session
        assert session is not None  # set by the view before any handler runs
        user = request.user
        author = getattr(user, "get_username", lambda: "")() or "anonymous"
        report = await WebSocketSession.objects.filter(
            channel_name=session.channel_name, connected=True
        ).asend_message(
            {
                "type": "message",
                "channel": session.channel_name,
                "author": author,
                "message": text[: self.max_message_length],
                "sent_at": timezone.now().isoformat(),
            }
        )
        return JsonResponse({"delivered": report.delivered_count})
