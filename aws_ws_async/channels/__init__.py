"""Channels people can rely on: many per connection, presence, history and resume (issue 13).

Subscriptions are rows of :class:`~aws_ws_async.models.ChannelSubscription`; a channel's
audience is ``WebSocketSession.objects.subscribed_to(channel)``. This package holds the
channel-level operations built on them: :mod:`.presence` (who is online, one query) and
:mod:`.reaper` (confirming doubtful connections with ``GET @connections``). Names are
re-exported here so ``from aws_ws_async.channels import apresence`` works.
"""

from __future__ import annotations

from aws_ws_async.channels.history import ReplayResult, areplay, replay
from aws_ws_async.channels.presence import Presence, PresenceUser, apresence, presence
from aws_ws_async.channels.publish import (
    EnqueuedPublish,
    PublishReport,
    aenqueue_publish,
    apublish,
    enqueue_publish,
    publish,
)

__all__ = [
    "EnqueuedPublish",
    "Presence",
    "PresenceUser",
    "PublishReport",
    "ReplayResult",
    "aenqueue_publish",
    "apresence",
    "apublish",
    "areplay",
    "enqueue_publish",
    "presence",
    "publish",
    "replay",
]
