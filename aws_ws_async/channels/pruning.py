"""Which kept channel messages are past their channel's bounds (count and age).

``manage.py cleanup_websocket_tokens`` deletes them, one (batched) DELETE per channel. The
bounds live on each :class:`~aws_ws_async.models.ChannelHistory` row, so the selection is per
channel: ``seq <= last_seq - max_messages`` (seqs have no holes, so that keeps exactly the newest
``max_messages``) or ``created_at < now - max_age``, both served by the ``(history, seq)`` /
``(history, created_at)`` indexes. A disabled channel keeps nothing (no replay reads it). The
counter rows themselves are never deleted: a channel's seqs never restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from aws_ws_async.models.history import ChannelHistory, ChannelMessage


def expired_messages(
    now: datetime | None = None, using: str | None = None
) -> Iterator[tuple[str, QuerySet[ChannelMessage]]]:
    """``(channel_name, messages past its bounds)`` for every channel that keeps history."""
    now = now or timezone.now()
    rows = ChannelHistory.objects.using(using).order_by("pk")
    fields = ("pk", "channel_name", "enabled", "last_seq", "max_messages", "max_age")
    for pk, name, enabled, last_seq, max_messages, max_age in rows.values_list(*fields):
        messages = ChannelMessage.objects.using(using).filter(history_id=pk)
        if enabled:
            messages = messages.filter(
                Q(seq__lte=last_seq - max_messages) | Q(created_at__lt=now - max_age)
            )
        yield name, messages
