"""The chat's pages: a room (one channel per room) and the login page."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.generic import TemplateView

from aws_ws_async.models import ApiGateway
from aws_ws_async.validators import is_valid_channel_name

DEFAULT_ROOM = "lobby"
ROOMS = ("lobby", "random", "dev")


class RoomView(LoginRequiredMixin, TemplateView):
    """``/?channel=<room>``: the page whose script joins the room's channel over WebSocket."""

    template_name = "chat/room.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        channel = request.GET.get("channel") or DEFAULT_ROOM
        if not is_valid_channel_name(channel):
            # A page in the demo's own style, saying what was refused and why (status 400).
            return render(
                request,
                "chat/refused.html",
                {"refused": channel[:200], "rooms": ROOMS},
                status=400,
            )
        return super().get(request, *args, channel=channel, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # The gateway the launcher created (run_demo.py --api-id); its URL is the socket's.
        api_id = getattr(settings, "DEMO_API_ID", None) or os.environ.get(
            "DEMO_API_ID", "demolocal"
        )
        gateway = ApiGateway.objects.filter(api_id=api_id).first()
        context.update(
            rooms=sorted({*ROOMS, context["channel"]}),
            websocket_url=gateway.websocket_url if gateway else "",
            # run_demo.py --client-max-age-ms / --client-ping-ms: empty = the client's defaults.
            client_max_age_ms=os.environ.get("DEMO_CLIENT_MAX_AGE_MS", ""),
            client_ping_ms=os.environ.get("DEMO_CLIENT_PING_MS", ""),
            client_subscribe_timeout_ms=os.environ.get("DEMO_CLIENT_SUBSCRIBE_TIMEOUT_MS", ""),
        )
        return context
