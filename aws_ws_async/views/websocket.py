"""``WebSocketView``: the Django side of an API Gateway WebSocket API.

Mount a subclass as ``path("ws/<slug:route>", MyView.as_view())``; API Gateway's integrations
post ``$connect`` to ``ws/connect``, ``$disconnect`` to ``ws/disconnect`` and messages to
``ws/default`` (or a custom route's URL). See ``docs/views.md``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse

from aws_ws_async.conf import get_settings
from aws_ws_async.models import WebSocketSession
from aws_ws_async.views.background import spawn
from aws_ws_async.views.channels import ChannelsMixin
from aws_ws_async.views.connect import ConnectMixin
from aws_ws_async.views.messages import MessagesMixin

logger = logging.getLogger("aws_ws_async.views")


class WebSocketView(ChannelsMixin, ConnectMixin, MessagesMixin):
    """Async class-based view for ``$connect``, ``$disconnect`` and messages.

    Handlers are public methods of the subclass, ``async def`` (preferred) or plain ``def``
    (run in a thread), with the signature ``(self, request, *args, **kwargs)``. A message picks
    one with ``{"handler": "name"}`` or ``{"action": "name"}``.
    """

    #: Methods defined here and above are the framework, never handlers (see handlers.py).
    _handler_boundary = True

    async def route_request(
        self, request: HttpRequest, route_name: str, raw: bytes, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        if route_name == "connect":
            return await self.connect(request, *args, **kwargs)
        if route_name == "disconnect":
            return await self.disconnect(request, *args, **kwargs)
        return await self.message(request, raw, *args, **kwargs)

    # --- welcome messages ----------------------------------------------------------------

    def send_after_connect(self, data: Any) -> None:
        """Queue ``data`` for this connection, sent once API Gateway has opened it.

        A post made while ``$connect`` is still being answered gets 410 (the socket does not
        exist yet), so queued messages are posted by a background task after the 200 is
        returned, retrying 410 for ``welcome_retry_seconds``. Needs an ASGI server (the task
        runs on the server's event loop).
        """
        self._after_connect.append(data)

    def start_after_connect_delivery(self) -> None:
        session = self.websocket_session
        if session is None:
            return
        messages, self._after_connect = list(self._after_connect), []
        spawn(
            deliver_after_connect(session, messages),
            f"aws_ws_async.welcome:{session.connection_id}",
        )


async def deliver_after_connect(session: WebSocketSession, messages: list[Any]) -> None:
    """Post queued messages in order, each retrying 410 while the socket opens."""
    retry = get_settings().welcome_retry_seconds
    send = getattr(session, "asend_message", None)
    if send is None:
        logger.error("cannot send welcome messages: the delivery layer is not installed")
        return
    for data in messages:
        report = await send(data, gone_retry_seconds=retry)
        logger.debug("welcome message to %s: %s", session.connection_id, report)
