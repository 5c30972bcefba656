"""Who may join a channel: an access level per channel, refined by permission rules."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.db import models
from django.utils.translation import gettext_lazy as _

from aws_ws_async.validators import validate_channel_name


class ChannelAccess(models.TextChoices):
    ALLOW_ALL = "allow_all", _("Anyone who may connect")
    STAFF_ONLY = "staff_only", _("Staff and superusers")
    SUPERUSER_ONLY = "superuser_only", _("Superusers only")
    PERMISSIONS = "permissions", _("Users matching a permission rule")


class ChannelPermission(models.Model):
    """Access policy for one channel; channels without a row follow the view's default."""

    channel_name = models.CharField(max_length=128, unique=True, validators=[validate_channel_name])
    access = models.CharField(
        max_length=16, choices=ChannelAccess.choices, default=ChannelAccess.ALLOW_ALL
    )
    description = models.CharField(max_length=255, blank=True, default="")
    created_on = models.DateTimeField(auto_now_add=True)
    updated_on = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("channel permission")

    def __str__(self) -> str:
        return f"{self.channel_name}: {self.get_access_display()}"

    @classmethod
    def for_channel(cls, channel_name: str) -> ChannelPermission | None:
        return cls.objects.filter(channel_name=channel_name).first()

    @classmethod
    async def afor_channel(cls, channel_name: str) -> ChannelPermission | None:
        return await cls.objects.filter(channel_name=channel_name).afirst()

    def _decide_without_rules(self, user: Any) -> bool | None:
        """The answer when no rule needs evaluating, else None."""
        if self.access == ChannelAccess.ALLOW_ALL:
            return True
        if user is None or not user.is_authenticated or not user.is_active:
            return False
        if user.is_superuser:
            return True
        if self.access == ChannelAccess.STAFF_ONLY:
            return bool(user.is_staff)
        if self.access == ChannelAccess.SUPERUSER_ONLY:
            return False
        return None

    def allows(self, user: Any) -> bool:
        decided = self._decide_without_rules(user)
        if decided is not None:
            return decided
        return any(
            rule.is_satisfied_by(user) for rule in self.rules.prefetch_related("permissions")
        )

    async def aallows(self, user: Any) -> bool:
        decided = self._decide_without_rules(user)
        if decided is not None:
            return decided
        async for rule in self.rules.prefetch_related("permissions"):
            if await rule.ais_satisfied_by(user):
                return True
        return False


class ChannelPermissionRule(models.Model):
    """A set of permissions a user must hold all of; any one satisfied rule grants access."""

    channel_permission = models.ForeignKey(
        ChannelPermission, on_delete=models.CASCADE, related_name="rules"
    )
    description = models.CharField(max_length=255, blank=True, default="")
    permissions = models.ManyToManyField(Permission, blank=True, related_name="+")

    class Meta:
        verbose_name = _("channel permission rule")

    def __str__(self) -> str:
        return self.description or f"rule {self.pk}"

    @staticmethod
    def _perm_names(permissions: Any) -> list[str]:
        return [f"{p.content_type.app_label}.{p.codename}" for p in permissions]

    def is_satisfied_by(self, user: Any) -> bool:
        """All permissions held; an empty rule never matches (it would grant everyone)."""
        names = self._perm_names(self.permissions.select_related("content_type"))
        return bool(names) and bool(user.has_perms(names))

    async def ais_satisfied_by(self, user: Any) -> bool:
        names = [
            name
            async for name in self.permissions.select_related("content_type").values_list(
                "content_type__app_label", "codename"
            )
        ]
        perm_names = [f"{app}.{code}" for app, code in names]
        if not perm_names:
            return False
        return bool(await user.ahas_perms(perm_names))
