"""One row per WebSocket connection, and sending to (or closing) that one connection.

The selectors and bulk twins are on its QuerySet (:mod:`.session_queryset`), the reasons and
API Gateway's limits in :mod:`.session_ends`; both are re-exported here, so every import of
``aws_ws_async.models.sessions`` (and pickled broadcast queries naming the old paths) works.
Each twin validates its arguments (:mod:`.operations`) and hands over to :mod:`.sending`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aws_ws_async.models import sending
from aws_ws_async.models.marks import disconnect_values
from aws_ws_async.models.operations import (
    check_timeout,
    close_operation,
    send_operation,
    single_policy,
)
from aws_ws_async.models.session_ends import IDLE_TIMEOUT, MAX_CONNECTION_AGE, DisconnectReason
from aws_ws_async.models.session_queryset import WebSocketSessionManager, WebSocketSessionQuerySet
from aws_ws_async.validators import validate_channel_name, validate_connection_id

if TYPE_CHECKING:
    from aws_ws_async.delivery import DeliveryReport

__all__ = [
    "IDLE_TIMEOUT",
    "MAX_CONNECTION_AGE",
    "DisconnectReason",
    "WebSocketSession",
    "WebSocketSessionManager",
    "WebSocketSessionQuerySet",
]


class WebSocketSession(models.Model):
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

    def _rows(self) -> WebSocketSessionQuerySet:
        """This row, on the database it was loaded from."""
        return type(self)._base_manager.db_manager(self._state.db).filter(pk=self.pk)  # type: ignore[return-value]

    def mark_disconnected(self, reason: str = DisconnectReason.SERVER) -> bool:
        """Flag this connection disconnected; False if it already was."""
        close_operation(type(self), reason)
        changed = self._rows().filter(connected=True).update(**disconnect_values(reason))
        self._apply_disconnect(reason)
        return changed == 1

    async def amark_disconnected(self, reason: str = DisconnectReason.SERVER) -> bool:
        close_operation(type(self), reason)
        changed = await self._rows().filter(connected=True).aupdate(**disconnect_values(reason))
        self._apply_disconnect(reason)
        return changed == 1

    def _apply_disconnect(self, reason: str) -> None:
        self.connected = False
        self.disconnect_reason = reason
        self.disconnected_at = self.disconnected_at or timezone.now()

    # --- sending to this one connection --------------------------------------------------

    async def asend_message(
        self,
        data: Any,
        *,
        gone_retry_seconds: float = 0.0,
        timeout: float | None = None,  # noqa: ASYNC109 (the whole call's deadline)
    ) -> DeliveryReport:
        """Post to this connection. ``gone_retry_seconds`` keeps retrying 410 that long.

        API Gateway answers 410 until the connection's ``$connect`` has completed, so a welcome
        message queued from the ``$connect`` handler should pass a few seconds here. A 410 in
        the end marks the row ``gone``; a row already disconnected is not contacted.
        """
        op, policy = send_operation(data), single_policy(gone_retry_seconds)
        return await sending.arun_one(self, op, policy, check_timeout(timeout))

    def send_message(
        self, data: Any, *, gone_retry_seconds: float = 0.0, timeout: float | None = None
    ) -> DeliveryReport:
        """Sync twin of :meth:`asend_message`."""
        op, policy = send_operation(data), single_policy(gone_retry_seconds)
        return sending.run_one(self, op, policy, check_timeout(timeout))

    async def adisconnect(
        self,
        reason: str = DisconnectReason.SERVER,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the whole call's deadline)
    ) -> DeliveryReport:
        """Close this connection server-side (``DELETE @connections``) and mark it."""
        op, policy = close_operation(type(self), reason), single_policy()
        return await sending.arun_one(self, op, policy, check_timeout(timeout))

    def disconnect(
        self, reason: str = DisconnectReason.SERVER, *, timeout: float | None = None
    ) -> DeliveryReport:
        """Sync twin of :meth:`adisconnect`."""
        op, policy = close_operation(type(self), reason), single_policy()
        return sending.run_one(self, op, policy, check_timeout(timeout))
