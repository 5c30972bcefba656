"""Which channels a connection listens to: one ``ChannelSubscription`` row per (session, channel).

``$connect`` inserts the row of the connection's first channel (``WebSocketSession.channel_name``
stays that channel, for compatibility) in the same thread hop as the session row; the
``subscribe`` / ``unsubscribe`` handlers add and remove the others. A channel's audience is the
connected sessions joined through this table, walked in session-pk order (keyset paging) through
the ``(channel_name, session)`` index. Rows of a closed connection stay until the session row is
deleted by the cleanup command (``on_delete=CASCADE``); every query joins ``connected=True``.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aws_ws_async.validators import validate_channel_name


class ChannelSubscription(models.Model):
    """One connection listening to one channel."""

    session = models.ForeignKey(
        "aws_ws_async.WebSocketSession",
        on_delete=models.CASCADE,
        related_name="subscriptions",
    )
    channel_name = models.CharField(max_length=128, validators=[validate_channel_name])
    subscribed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("channel subscription")
        constraints = [
            models.UniqueConstraint(
                fields=["session", "channel_name"], name="wss_subscription_unique"
            ),
        ]
        indexes = [
            # A channel's audience in session-pk order: the keyset walk of a broadcast and the
            # presence query both start here.
            models.Index(fields=["channel_name", "session"], name="wss_subscription_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} in {self.channel_name}"
