"""Who may connect, join a channel or call a handler: the checks shared by every route."""

from __future__ import annotations

from typing import Any

from aws_ws_async.models import ChannelPermission
from aws_ws_async.validators import is_valid_channel_name
from aws_ws_async.views.base import WebSocketViewBase


class AccessMixin(WebSocketViewBase):
    """Channel policies and view permissions, all overridable async hooks."""

    #: Channels without a ``ChannelPermission`` row are open (True, as the predecessor) or
    #: closed (False; recommended, and reported by check W004 when left True).
    ALLOW_UNLISTED_CHANNELS: bool = True
    #: Any one of these permissions is enough (``user.has_perm`` semantics).
    permissions_required: list[str] = []
    #: All of these are needed; when set it wins over ``permissions_required``.
    all_permissions_required: list[str] = []

    #: The connection's channel during this request.
    channel_name: str = ""
    #: ``(channel, policy)`` read together with the token on ``$connect`` (saves a query).
    _channel_policy: tuple[str, ChannelPermission | None] | None = None

    def is_valid_channel(self, name: object) -> bool:
        """Full-match channel syntax (``room\\n`` is refused); override to narrow it."""
        return is_valid_channel_name(name)

    async def get_channel_permission(self, channel_name: str) -> ChannelPermission | None:
        """The channel's policy row (read with the token on ``$connect``, else one query)."""
        if self._channel_policy is not None and self._channel_policy[0] == channel_name:
            return self._channel_policy[1]
        return await ChannelPermission.afor_channel(channel_name)

    async def can_join_channel(self, user: Any, channel_name: str) -> bool:
        """A listed channel's policy decides; unlisted ones follow ``ALLOW_UNLISTED_CHANNELS``."""
        policy = await self.get_channel_permission(channel_name)
        if policy is None:
            return self.ALLOW_UNLISTED_CHANNELS
        return await policy.aallows(user)

    async def has_any_permission(self, user: Any, permissions: list[str]) -> bool:
        for permission in permissions:
            if await user.ahas_perm(permission):
                return True
        return False

    async def has_all_permission(self, user: Any, permissions: list[str]) -> bool:
        return bool(await user.ahas_perms(permissions))

    async def has_required_permissions(self, user: Any) -> bool:
        """``all_permissions_required`` (all of) wins over ``permissions_required`` (any of)."""
        if self.all_permissions_required:
            return await self.has_all_permission(user, list(self.all_permissions_required))
        if self.permissions_required:
            return await self.has_any_permission(user, list(self.permissions_required))
        return True
