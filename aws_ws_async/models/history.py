"""Ordered, bounded history per channel: the opt-in row that is also the sequence counter.

``ChannelHistory`` is one row per channel that keeps history. It is the opt-in (no row, or
``enabled=False``: broadcasts carry no ``seq`` and nothing is written), the bounds (count and age)
and the atomic counter: a broadcast takes the next ``seq`` by ``UPDATE ... SET last_seq =
last_seq + 1`` in the transaction that also inserts its ``ChannelMessage``, so the row lock
orders publishers and a seq becomes visible only together with its message. The counter row is
never pruned, so seqs never restart (a client's ``since`` stays meaningful forever).

``ChannelMessage`` is one row per broadcast (never one per recipient): the exact frame that was
posted, kept as bytes, so a replay posts the stored bytes without encoding anything again.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aws_ws_async.validators import validate_channel_name

#: Defaults of a new history row: enough for a reconnect after the 2-hour cap or a laptop lid.
DEFAULT_MAX_MESSAGES = 1000
DEFAULT_MAX_AGE = timedelta(hours=24)


class ChannelHistory(models.Model):
    """A channel that keeps history: its bounds and its last sequence number."""

    channel_name = models.CharField(max_length=128, unique=True, validators=[validate_channel_name])
    enabled = models.BooleanField(
        default=True,
        help_text=_("Off: broadcasts carry no seq and are not kept (the counter is kept)."),
    )
    max_messages = models.PositiveIntegerField(
        default=DEFAULT_MAX_MESSAGES,
        validators=[MinValueValidator(1)],
        help_text=_("Messages kept; older ones are pruned by cleanup_websocket_tokens."),
    )
    max_age = models.DurationField(
        default=DEFAULT_MAX_AGE,
        help_text=_("Messages older than this are pruned by cleanup_websocket_tokens."),
    )
    last_seq = models.PositiveBigIntegerField(
        default=0, editable=False, help_text=_("The seq of the latest broadcast (never reset).")
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("channel history")
        verbose_name_plural = _("channel histories")

    def __str__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"{self.channel_name} (history {state}, seq {self.last_seq})"


class ChannelMessage(models.Model):
    """One broadcast kept for replay: the frame as posted (``{"type": "message", ...}``)."""

    history = models.ForeignKey(ChannelHistory, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveBigIntegerField()
    frame = models.BinaryField(help_text=_("The encoded frame as posted to the subscribers."))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("channel message")
        constraints = [
            # Also the index of every replay (history, seq > since) and of count pruning.
            models.UniqueConstraint(fields=["history", "seq"], name="wss_channel_message_seq"),
        ]
        indexes = [
            models.Index(fields=["history", "created_at"], name="wss_channel_message_age"),
        ]

    def __str__(self) -> str:
        return f"{self.history_id} #{self.seq}"
