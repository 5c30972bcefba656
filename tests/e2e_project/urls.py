"""URLs of the e2e project: the sync-twin views, admin and auth."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from tests.e2e_project import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("e2e/make-sessions", views.make_sessions),
    path("e2e/qs-send", views.qs_send),
    path("e2e/qs-disconnect", views.qs_disconnect),
    path("e2e/send-to-user", views.send_to_user),
    path("e2e/session-send", views.session_send),
    path("e2e/session-disconnect", views.session_disconnect),
    path("e2e/async-qs-send", views.async_qs_send),
    path("e2e/bridge-async-orm", views.bridge_async_orm),
    path("e2e/logout", views.logout_view),
]
