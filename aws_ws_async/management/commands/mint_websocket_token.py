"""``manage.py mint_websocket_token --user U``: a connect token for scripts, in development.

Browsers get their token from ``WebSocketTokenView`` after logging in; a script or a non-browser
client has no login form to fill in. This command logs the user in the way the login view
does (a new Django session with the user's auth hash, so logout or a password change voids
it), issues a one-time token bound to that session and prints both: ``$connect`` checks the
token *and* the session cookie. It is refused when ``DEBUG`` is off, because it hands out a
login without a password.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from aws_ws_async.conf import get_settings
from aws_ws_async.models import ApiGateway, WebSocketToken
from aws_ws_async.testing.local_gateway import login_session


class Command(BaseCommand):
    help = (
        "Print a one-time WebSocket connect token and the session cookie it is bound to, for "
        "scripts and non-browser clients. Development only (refused when DEBUG is False)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="Username (USERNAME_FIELD) or pk.")
        parser.add_argument(
            "--api-id", help="Print the connect URL of this ApiGateway row (default: the only one)."
        )
        parser.add_argument("--channel", default="", help="Channel to put in the printed URL.")
        parser.add_argument("--json", action="store_true", help="One JSON object on stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "mint_websocket_token logs a user in without a password; it only runs with "
                "DEBUG=True. In production clients get tokens from WebSocketTokenView."
            )
        user = self._find_user(options["user"])
        session_key = login_session(user)
        conf = get_settings()
        token = WebSocketToken.issue(
            user,
            session_key,
            expiry_seconds=conf.token_expiry_seconds,
            max_per_minute=conf.token_rate_limit_per_minute,
        )
        if token is None:
            raise CommandError(f"Token rate limit reached for {user}; retry in a minute.")
        cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}"
        url = self._connect_url(options.get("api_id"), token, options["channel"])
        if options["json"]:
            payload = {
                "token": token,
                "cookie": cookie,
                "expires_in": conf.token_expiry_seconds,
                "url": url,
            }
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(f"token:  {token}")
        self.stdout.write(f"cookie: {cookie}")
        self.stdout.write(f"expires in {conf.token_expiry_seconds} s, usable once")
        if url:
            self.stdout.write(f"url:    {url}")
        self.stdout.write(
            "Connect with the Cookie header above and an Origin header your view allows "
            "(e.g. the backend's own http://127.0.0.1:8000)."
        )

    def _find_user(self, name: str) -> Any:
        model = get_user_model()
        manager = model._default_manager
        user = manager.filter(**{model.USERNAME_FIELD: name}).first()
        if user is None and name.isdigit():
            user = manager.filter(pk=int(name)).first()
        if user is None:
            raise CommandError(f"No user {name!r} ({model.USERNAME_FIELD} or pk).")
        if not user.is_active:
            raise CommandError(f"User {name!r} is inactive; $connect would refuse the token.")
        return user

    def _connect_url(self, api_id: str | None, token: str, channel: str) -> str:
        rows = ApiGateway.objects.exclude(api_id="")
        if api_id:
            rows = rows.filter(api_id=api_id)
        found = list(rows[:2])
        if len(found) != 1 or not found[0].websocket_url:
            return ""
        query = f"ws_token={token}" + (f"&channel={channel}" if channel else "")
        return f"{found[0].websocket_url}?{query}"
