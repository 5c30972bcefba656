from __future__ import annotations

from django.contrib import admin
from django.urls import path

from aws_ws_async.views import WebSocketTokenView
from tests import fixtures_views as v

urlpatterns = [
    path("admin/", admin.site.urls),
    path("ws/<slug:route>", v.EchoView.as_view(), name="ws"),
    path("ws-perm/<slug:route>", v.PermissionView.as_view()),
    path("ws-allperm/<slug:route>", v.AllPermissionView.as_view()),
    path("ws-fallback/<slug:route>", v.FallbackView.as_view()),
    path("ws-explicit/<slug:route>", v.ExplicitView.as_view()),
    path("ws-notoken/<slug:route>", v.NoTokenView.as_view()),
    path("ws-hook/<slug:route>", v.HookView.as_view()),
    path("ws-strict/<slug:route>", v.StrictChannelsView.as_view()),
    path("ws-sub/<slug:route>", v.SubdomainView.as_view()),
    path("ws-pinned/<slug:route>", v.PinnedGatewayView.as_view()),
    path("ws-token/", WebSocketTokenView.as_view(), name="ws-token"),
]
