"""URLs of the example project: the API Gateway integration target and the token endpoint."""

from __future__ import annotations

from chat.websocket import ChatWebSocketView
from django.contrib import admin
from django.urls import include, path

from aws_ws_async.views import WebSocketTokenView

urlpatterns = [
    path("admin/", admin.site.urls),
    # API Gateway posts $connect, $disconnect and messages here (ws/connect, ws/disconnect,
    # ws/default): set the gateway's target_base_endpoint to https://<this host>/ws/.
    path("ws/<slug:route>", ChatWebSocketView.as_view(), name="websocket"),
    path("ws-token/", WebSocketTokenView.as_view(), name="websocket-token"),
]
# The chat pages, login/logout and the demo's static files (added with the demo launcher).
urlpatterns += [path("", include("chat.urls"))]
