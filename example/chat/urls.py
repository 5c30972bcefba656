"""The chat's pages and the demo's static files (included by ``demo_project.urls``)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.views import serve
from django.urls import path

from chat.views import RoomView

urlpatterns = [
    path("", RoomView.as_view(), name="room"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    # Our own template: the admin's registration/logged_out.html would win by app order.
    path(
        "accounts/logout/",
        auth_views.LogoutView.as_view(template_name="chat/logged_out.html"),
        name="logout",
    ),
    # The demo serves its own script and stylesheet (no CDN, no collectstatic) even with
    # DEBUG off; a real deployment serves static files from a web server or WhiteNoise.
    path("static/<path:path>", serve, {"insecure": True}),
]
