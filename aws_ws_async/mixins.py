"""Template-view mixins that tell a page which WebSocket route and channel to use.

Ported from the predecessor with the same names and context keys, so templates keep working.
``AppChannelWebSocketMixin`` derives the channel from the view's app package; dotted packages
(``myproject.chat``) are valid channel names now (the predecessor produced names its own
validation refused).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.views.generic.base import ContextMixin

from aws_ws_async.validators import is_valid_channel_name


class AddWebSocketRouteToContextMixin(ContextMixin):
    """Adds ``api_gateway_route`` and ``channel_name`` to the template context."""

    websocket_route_key: str = "default"
    channel_name: str = ""

    def get_websocket_route_key(self) -> str:
        return self.websocket_route_key

    def get_channel_name(self) -> str:
        return self.channel_name

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        channel = self.get_channel_name()
        if channel and not is_valid_channel_name(channel):
            raise ImproperlyConfigured(f"{type(self).__name__}: invalid channel name {channel!r}")
        context["api_gateway_route"] = self.get_websocket_route_key()
        context["channel_name"] = channel
        return context


class AppChannelWebSocketMixin(AddWebSocketRouteToContextMixin):
    """Channel and route key named after the view's app package (or ``app_channel_override``)."""

    app_channel_override: str | None = None

    def get_app_channel(self) -> str:
        if self.app_channel_override:
            return self.app_channel_override
        module = type(self).__module__
        package = module.rpartition(".")[0] or module
        return package

    def get_websocket_route_key(self) -> str:
        return self.get_app_channel()

    def get_channel_name(self) -> str:
        return self.get_app_channel()
