"""Admin pages of channel history: the per-channel opt-in and bounds, and the kept messages.

Registered by importing this module from ``admin.py``. A ``ChannelHistory`` row is editable
(turn history on or off, change ``max_messages`` / ``max_age``; ``last_seq`` is the counter and
never editable, and the channel name is fixed once the row exists, since its seqs belong to
it). A history row cannot be deleted here: a new row would restart the channel's seqs at 1 and
a client whose ``since`` the new run has passed could not tell (untick ``enabled`` instead).
Kept messages are read-only: they are what was posted, and only the cleanup command
prunes them. They are a separate list (filtered by channel) rather than an inline, because a
channel may keep thousands.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from aws_ws_async.models import ChannelHistory, ChannelMessage

#: Characters of a kept frame shown in the message list.
PREVIEW_CHARS = 120


@admin.register(ChannelHistory)
class ChannelHistoryAdmin(admin.ModelAdmin):
    list_display = ("channel_name", "enabled", "last_seq", "max_messages", "max_age", "messages")
    list_filter = ("enabled",)
    search_fields = ("channel_name",)
    fields = ("channel_name", "enabled", "max_messages", "max_age", "last_seq", "created_at")
    ordering = ("channel_name",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = ("last_seq", "created_at")
        return fixed if obj is None else ("channel_name", *fixed)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="kept messages")
    def messages(self, obj: ChannelHistory) -> str:
        url = reverse("admin:aws_ws_async_channelmessage_changelist")
        query = urlencode({"history__id__exact": obj.pk})
        return format_html('<a href="{}?{}">view</a>', url, query)


@admin.register(ChannelMessage)
class ChannelMessageAdmin(admin.ModelAdmin):
    list_display = ("seq", "channel", "created_at", "size", "preview")
    list_filter = ("history",)
    list_select_related = ("history",)
    ordering = ("history", "-seq")
    fields = ("history", "seq", "created_at", "size", "preview")
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="channel", ordering="history__channel_name")
    def channel(self, obj: ChannelMessage) -> str:
        return obj.history.channel_name

    @admin.display(description="bytes")
    def size(self, obj: ChannelMessage) -> int:
        return len(obj.frame)

    @admin.display(description="frame")
    def preview(self, obj: ChannelMessage) -> str:
        text = bytes(obj.frame).decode("utf-8", errors="replace")
        return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + "…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
