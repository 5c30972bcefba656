"""The baseline ``benchmarks.request_server`` must beat: a predecessor-style sync view.

The predecessor served API Gateway's callbacks with a sync Django view under gunicorn's sync
worker, with persistent connections (``CONN_MAX_AGE=600``). This view makes the same checks as
``WebSocketView`` in the same order, with the sync ORM and the same statements, each built by
the ORM on every request as the predecessor's were (not the package's compiled ones), so the
comparison is of the serving model, not of less work: secret, required headers, body size;
then per route

* message: JSON object, handler allow-list, connection id syntax, the session with its user and
  gateway (one SELECT), user active with an unchanged password, ``last_seen`` at most once per
  interval;
* ``$connect``: handshake headers, connection id, Host, Origin, gateway (cached per process, as
  ours), channel syntax, the token with its user and channel policy, its browser session, the
  rate limit (INSERT + COUNT), the policy, then spend + INSERT of session and subscription;
* ``$disconnect``: the session, then the conditional UPDATE.

It is a benchmark fixture, not an API: refusals answer a bare status (none happen in the run,
and any would fail it).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Subquery
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from aws_ws_async.conf import get_settings
from aws_ws_async.hashing import hash_session_key, hash_user_auth, matches_any, user_auth_hashes
from aws_ws_async.models import (
    ApiGateway,
    ChannelPermission,
    ChannelSubscription,
    ConnectionRateLimit,
    DisconnectReason,
    WebSocketSession,
    WebSocketToken,
)
from aws_ws_async.security import client_ip, host_allowed, origin_allowed, secret_matches
from aws_ws_async.validators import TOKEN_RE, is_valid_channel_name, is_valid_connection_id
from aws_ws_async.views.base import MAX_MESSAGE_BYTES, WebSocketViewBase

REQUIRED = WebSocketViewBase.required_headers
HANDSHAKE = ("Origin", "Sec-WebSocket-Key", "Sec-WebSocket-Version")
HANDLERS = frozenset({"noop"})
_gateways: dict[str, ApiGateway | None] = {}


def refused(status: int) -> HttpResponse:
    return HttpResponse(status=status)


class PredecessorStyleView(View):
    """Sync ``ws/<route>``: the same checks and statements as ``WebSocketView``, sync ORM."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, route: str) -> HttpResponse:
        conf = get_settings()
        headers = request.headers
        if conf.gateway_secrets and not secret_matches(
            headers.get(conf.gateway_secret_header), conf.gateway_secrets
        ):
            return refused(403)
        if any(not headers.get(name) for name in (*REQUIRED, conf.connection_id_header)):
            return refused(400)
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_MESSAGE_BYTES:
            return refused(413)
        connection_id = str(headers.get(conf.connection_id_header, ""))
        api_id = str(headers.get("X-Amzn-Apigateway-Api-Id", ""))
        if route == "connect":
            return self.connect(request, connection_id, api_id)
        if route == "disconnect":
            return self.disconnect(connection_id, api_id)
        return self.message(request, connection_id, api_id)

    @staticmethod
    def session(connection_id: str, api_id: str) -> WebSocketSession | None:
        if not is_valid_connection_id(connection_id):
            return None
        return (
            WebSocketSession.objects.select_related("user", "api_gateway")
            .filter(Q(api_gateway__api_id=api_id), connection_id=connection_id, connected=True)
            .first()
        )

    def message(self, request: HttpRequest, connection_id: str, api_id: str) -> HttpResponse:
        try:
            body = json.loads(request.body)
        except ValueError:
            return refused(400)
        if not isinstance(body, dict) or body.get("action") not in HANDLERS:
            return refused(404)
        session = self.session(connection_id, api_id)
        if session is None:
            return refused(401)
        user = session.user
        if user is not None and not (
            user.is_active and matches_any(session.auth_hash, user_auth_hashes(user))
        ):
            return refused(401)
        interval = timedelta(seconds=get_settings().last_seen_interval_seconds)
        now = timezone.now()
        if now - session.last_seen_at >= interval:
            WebSocketSession.objects.filter(pk=session.pk, last_seen_at__lte=now - interval).update(
                last_seen_at=now
            )
        return JsonResponse({})

    def connect(self, request: HttpRequest, connection_id: str, api_id: str) -> HttpResponse:
        conf = get_settings()
        if any(not request.headers.get(name) for name in HANDSHAKE):
            return refused(400)
        host = request.META.get("HTTP_HOST", "")
        if not is_valid_connection_id(connection_id) or not host_allowed(
            host, settings.ALLOWED_HOSTS
        ):
            return refused(400)
        origin = request.headers.get("Origin")
        if not origin_allowed(origin, host=host, trusted_origins=[], allow_subdomains=False):
            return refused(403)
        if api_id not in _gateways:
            _gateways[api_id] = ApiGateway.objects.filter(api_id=api_id).first()
        gateway = _gateways[api_id]
        channel = request.GET.get("channel", "")
        raw = request.GET.get("ws_token", "")
        session_key = str(request.COOKIES.get(settings.SESSION_COOKIE_NAME, ""))
        if gateway is None or not is_valid_channel_name(channel) or not session_key:
            return refused(400)
        if TOKEN_RE.fullmatch(raw) is None:
            return refused(401)
        rows = ChannelPermission.objects.filter(channel_name=channel)
        queryset = (
            WebSocketToken.unspent(raw, session_key)
            .select_related("user")
            .annotate(
                _channel_access=Subquery(rows.values("access")[:1]),
                _channel_permission_id=Subquery(rows.values("pk")[:1]),
            )
        )
        ip = client_ip(request.headers.get("X-Forwarded-For"), conf.trusted_proxy_count)
        window = timedelta(minutes=conf.rate_limit_window_minutes)
        token = queryset.first()
        if token is None or not token.user.is_active or not token.session_is_live(session_key):
            return refused(401)
        allowed, _attempt = ConnectionRateLimit.record_and_check(
            ip, token.user, max_attempts=conf.rate_limit_max_attempts, window=window
        )
        if not allowed:
            return refused(401)
        access: Any = getattr(token, "_channel_access", None)
        if access is not None and not ChannelPermission(channel_name=channel, access=access).allows(
            token.user
        ):
            return refused(403)
        row = WebSocketSession(
            connection_id=connection_id,
            channel_name=channel,
            user=token.user,
            api_gateway=gateway,
            session_key_hash=hash_session_key(session_key),
            auth_hash=hash_user_auth(token.user),
        )
        if not token.spend():
            return refused(409)
        try:
            with transaction.atomic():
                row.save(force_insert=True)
                ChannelSubscription.objects.create(
                    session=row, channel_name=channel, subscribed_at=row.connected_at
                )
        except IntegrityError:
            token.unspend()
            return refused(409)
        return JsonResponse({})

    def disconnect(self, connection_id: str, api_id: str) -> HttpResponse:
        session = self.session(connection_id, api_id)
        if session is None:
            return refused(401)
        now = timezone.now()
        changed = WebSocketSession.objects.filter(pk=session.pk, connected=True).update(
            connected=False,
            disconnected_at=now,
            disconnect_reason=DisconnectReason.CLIENT,
            updated_on=now,
        )
        return JsonResponse({}) if changed else refused(401)


def trivial(request: HttpRequest) -> JsonResponse:
    """The sync floor: a trivial sync view behind the same middleware."""
    return JsonResponse({})


predecessor_view = csrf_exempt(PredecessorStyleView.as_view())
trivial_view = csrf_exempt(trivial)
