"""One row per WebSocket connection, and the QuerySet that selects recipients.

Sending (``asend_message`` / ``send_message`` / ``adisconnect``...) is inherited from the mixins
in ``aws_ws_async.models.sending`` so that this module stays about data; the QuerySet and model
classes here are the public ones.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aws_ws_async.models.sending import SendingQuerySetMixin, SendingSessionMixin
from aws_ws_async.validators import validate_channel_name, validate_connection_id

if TYPE_CHECKING:
    from datetime import datetime

    from aws_ws_async.delivery import DeliveryReport

#: API Gateway closes every connection after two hours and idle ones after ten minutes.
MAX_CONNECTION_AGE = timedelta(hours=2)
IDLE_TIMEOUT = timedelta(minutes=10)


class DisconnectReason(models.TextChoices):
    CLIENT = "client", _("Client closed ($disconnect)")
    GONE = "gone", _("Gone (410 from @connections)")
    SERVER = "server", _("Closed by the server")
    LOGOUT = "logout", _("User logged out")
    USER_INVALID = "user_invalid", _("User inactive or password changed")
    STALE = "stale", _("Stale (past API Gateway's limits)")
    GATEWAY_DELETED = "gateway_deleted", _("Gateway deleted")


class WebSocketSessionQuerySet(SendingQuerySetMixin, models.QuerySet["WebSocketSession"]):
    """Chainable selectors for recipients; sending methods come from ``models.sending``."""

    def connected(self) -> WebSocketSessionQuerySet:
        return self.filter(connected=True)

    def for_channel(self, channel_name: str) -> WebSocketSessionQuerySet:
        return self.filter(channel_name=channel_name, connected=True)

    def for_user(self, user: Any) -> WebSocketSessionQuerySet:
        return self.filter(user=user, connected=True)

    def stale(
        self,
        now: datetime | None = None,
        max_age: timedelta = MAX_CONNECTION_AGE,
        idle_timeout: timedelta = IDLE_TIMEOUT,
    ) -> WebSocketSessionQuerySet:
        """Connected rows API Gateway has certainly closed: older than 2 h or idle past 10 min.

        ``last_seen_at`` is refreshed at most every ``last_seen_interval_seconds``, so the idle
        cut-off is widened by that interval to never reap a live connection.
        """
        from aws_ws_async.conf import get_settings

        now = now or timezone.now()
        slack = timedelta(seconds=get_settings().last_seen_interval_seconds)
        return self.filter(connected=True).filter(
            Q(connected_at__lt=now - max_age) | Q(last_seen_at__lt=now - idle_timeout - slack)
        )

    def mark_disconnected(self, reason: str = DisconnectReason.SERVER) -> int:
        """Flag connected rows disconnected in one UPDATE; returns how many changed."""
        now = timezone.now()
        return self.filter(connected=True).update(
            connected=False, disconnected_at=now, disconnect_reason=reason, updated_on=now
        )

    async def amark_disconnected(self, reason: str = DisconnectReason.SERVER) -> int:
        now = timezone.now()
        return await self.filter(connected=True).aupdate(
            connected=False, disconnected_at=now, disconnect_reason=reason, updated_on=now
        )

    async def asend_to_user(self, user: Any, data: Any, **kwargs: Any) -> DeliveryReport:
        """Send to every connection ``user`` has open (all their tabs and devices)."""
        return await self.for_user(user).asend_message(data, **kwargs)

    def send_to_user(self, user: Any, data: Any, **kwargs: Any) -> DeliveryReport:
        return self.for_user(user).send_message(data, **kwargs)


class WebSocketSessionManager(models.Manager["WebSocketSession"]):
    def get_queryset(self) -> WebSocketSessionQuerySet:
        return WebSocketSessionQuerySet(self.model, using=self._db)

    # Manager proxies for the selectors, so ``WebSocketSession.objects.for_channel(...)`` works.
    def connected(self) -> WebSocketSessionQuerySet:
        return self.get_queryset().connected()

    def for_channel(self, channel_name: str) -> WebSocketSessionQuerySet:
        return self.get_queryset().for_channel(channel_name)

    def for_user(self, user: Any) -> WebSocketSessionQuerySet:
        return self.get_queryset().for_user(user)

    def stale(self, **kwargs: Any) -> WebSocketSessionQuerySet:
        return self.get_queryset().stale(**kwargs)

    # Sending through the manager means "every connected session" (a channel-wide broadcast
    # needs ``for_channel(name)`` first).
    async def asend_message(self, data: Any, **kwargs: Any) -> DeliveryReport:
        return await self.get_queryset().asend_message(data, **kwargs)

    def send_message(self, data: Any, **kwargs: Any) -> DeliveryReport:
        return self.get_queryset().send_message(data, **kwargs)

    async def asend_to_user(self, user: Any, data: Any, **kwargs: Any) -> DeliveryReport:
        return await self.get_queryset().asend_to_user(user, data, **kwargs)

    def send_to_user(self, user: Any, data: Any, **kwargs: Any) -> DeliveryReport:
        return self.get_queryset().send_to_user(user, data, **kwargs)


class WebSocketSession(SendingSessionMixin, models.Model):
    """A live (or once-live) API Gateway connection, tied to the user who opened it."""

    connection_id = models.CharField(
        max_length=255, unique=True, validators=[validate_connection_id]
    )
    channel_name = models.CharField(
        max_length=128, blank=True, default="", validators=[validate_channel_name]
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="websocket_sessions",
    )
    connected = models.BooleanField(default=True)
    api_gateway = models.ForeignKey(
        "aws_ws_async.ApiGateway",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sessions",
    )
    request_count = models.PositiveBigIntegerField(default=1)
    session_key_hash = models.CharField(max_length=64, blank=True, default="", db_index=True)
    auth_hash = models.CharField(max_length=64, blank=True, default="")
    connected_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    disconnect_reason = models.CharField(
        max_length=16, blank=True, default="", choices=DisconnectReason.choices
    )
    created_on = models.DateTimeField(auto_now_add=True)
    updated_on = models.DateTimeField(auto_now=True)

    objects = WebSocketSessionManager()

    class Meta:
        verbose_name = _("WebSocket session")
        indexes = [
            # Broadcast queries walk connected rows of one channel/user/gateway in pk order
            # (keyset pagination); partial indexes keep them small as disconnected rows pile up.
            models.Index(
                fields=["channel_name", "id"],
                condition=Q(connected=True),
                name="wss_connected_channel",
            ),
            models.Index(
                fields=["user", "id"], condition=Q(connected=True), name="wss_connected_user"
            ),
            models.Index(
                fields=["api_gateway", "id"],
                condition=Q(connected=True),
                name="wss_connected_gateway",
            ),
            # The stale-row reaper.
            models.Index(fields=["connected", "last_seen_at"], name="wss_connected_last_seen"),
        ]

    def __str__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"{self.connection_id} ({self.channel_name or '-'}, {state})"

    def mark_disconnected(self, reason: str = DisconnectReason.SERVER) -> bool:
        """Flag this connection disconnected; False if it already was."""
        changed = (
            WebSocketSession.objects.get_queryset().filter(pk=self.pk).mark_disconnected(reason)
        )
        self._apply_disconnect(reason)
        return changed == 1

    async def amark_disconnected(self, reason: str = DisconnectReason.SERVER) -> bool:
        rows = WebSocketSession.objects.get_queryset().filter(pk=self.pk)
        changed = await rows.amark_disconnected(reason)
        self._apply_disconnect(reason)
        return changed == 1

    def _apply_disconnect(self, reason: str) -> None:
        self.connected = False
        self.disconnect_reason = reason
        self.disconnected_at = self.disconnected_at or timezone.now()
