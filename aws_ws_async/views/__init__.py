"""The async views: ``WebSocketView`` for API Gateway, ``WebSocketTokenView`` for browsers."""

from __future__ import annotations

from aws_ws_async.views.token import WebSocketTokenView
from aws_ws_async.views.websocket import WebSocketView

__all__ = ["WebSocketTokenView", "WebSocketView"]
