"""Admin pages of enqueued broadcasts: status, totals, rate, duration and every shard.

Registered by importing this module from ``admin.py``. Read-only: a ``Broadcast`` is made by
``enqueue_message`` (or the admin's bulk actions when a task backend is configured: a send, or a
close whose operation is ``disconnect``) and changed only by its workers, so the admin can watch
it, not edit it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from aws_ws_async.models import Broadcast, BroadcastShard


class BroadcastShardInline(admin.TabularInline):
    model = BroadcastShard
    extra = 0
    can_delete = False
    ordering = ("index",)
    fields = (
        *("index", "status", "after_pk", "last_pk", "done_pk", "attempts"),
        *("delivered", "gone", "failed", "lease_until", "error"),
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _seconds(broadcast: Broadcast) -> float | None:
    if broadcast.started_at is None:
        return None
    end = broadcast.finished_at or timezone.now()
    return max((end - broadcast.started_at).total_seconds(), 0.0)


@admin.register(Broadcast)
class BroadcastAdmin(admin.ModelAdmin):
    list_display = (
        *("id", "operation", "status", "created", "recipients", "delivered", "gone", "failed"),
        *("shards_total", "duration", "rate"),
    )
    list_filter = ("status", "operation")
    date_hierarchy = "created"
    fields = (
        *(
            "operation",
            "close_reason",
            "status",
            "created",
            "started_at",
            "finished_at",
            "duration",
            "rate",
        ),
        *("recipients", "delivered", "gone", "failed", "shards_total", "shard_size"),
        *("checkpoint_every", "error"),
    )
    readonly_fields = fields
    inlines = (BroadcastShardInline,)

    @admin.display(description="duration (s)")
    def duration(self, obj: Broadcast) -> str:
        seconds = _seconds(obj)
        return "-" if seconds is None else f"{seconds:.1f}"

    @admin.display(description="rate (msgs/s)")
    def rate(self, obj: Broadcast) -> str:
        seconds = _seconds(obj)
        done = obj.delivered + obj.gone + obj.failed
        return "-" if not seconds else f"{done / seconds:.0f}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
