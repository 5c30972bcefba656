"""Rows that record ``$connect`` attempts, for an atomic sliding-window limit.

Each attempt is inserted *before* the window is counted. Counting after inserting is what
makes the limit race-free without locks: the k-th request to be admitted saw at least k rows,
so at most ``max_attempts`` are ever admitted per window however many arrive at once. Refused
attempts are recorded too, so a client hammering the endpoint stays refused.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ConnectionRateLimit(models.Model):
    """One ``$connect`` attempt by an IP (and a user, when known)."""

    ip_address = models.GenericIPAddressField(null=True, blank=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="connection_attempts",
    )
    attempt_time = models.DateTimeField(default=timezone.now, db_index=True)
    successful = models.BooleanField(default=False)
    reason = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        verbose_name = _("connection attempt")
        indexes = [
            models.Index(fields=["ip_address", "attempt_time"], name="wsrl_ip_time"),
            models.Index(fields=["user", "attempt_time"], name="wsrl_user_time"),
        ]

    def __str__(self) -> str:
        return f"{self.ip_address} at {self.attempt_time:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def window_counts(
        cls, ip_address: str | None, user: Any | None, window: timedelta
    ) -> tuple[int, int]:
        """Attempts in the window by this IP and by this user, in one aggregate query."""
        since = timezone.now() - window
        user_id = getattr(user, "pk", None)
        aggregate = cls.objects.filter(attempt_time__gt=since).aggregate(
            by_ip=Count("pk", filter=Q(ip_address=ip_address)) if ip_address else Count(None),
            by_user=Count("pk", filter=Q(user_id=user_id)) if user_id else Count(None),
        )
        return int(aggregate["by_ip"] or 0), int(aggregate["by_user"] or 0)

    @classmethod
    def record_and_check(
        cls,
        ip_address: str | None,
        user: Any | None,
        *,
        max_attempts: int,
        window: timedelta,
    ) -> tuple[bool, ConnectionRateLimit]:
        """Record an attempt, then decide: allowed only if neither count exceeds the limit."""
        attempt = cls.objects.create(
            ip_address=ip_address, user=user if getattr(user, "pk", None) else None
        )
        by_ip, by_user = cls.window_counts(ip_address, user, window)
        return (by_ip <= max_attempts and by_user <= max_attempts), attempt

    @classmethod
    async def arecord_and_check(
        cls, ip_address: str | None, user: Any | None, *, max_attempts: int, window: timedelta
    ) -> tuple[bool, ConnectionRateLimit]:
        return await sync_to_async(cls.record_and_check)(
            ip_address, user, max_attempts=max_attempts, window=window
        )

    @classmethod
    def cleanup_old_records(cls, days: int = 7) -> int:
        deleted, _ = cls.objects.filter(
            attempt_time__lt=timezone.now() - timedelta(days=days)
        ).delete()
        return deleted

    @classmethod
    async def acleanup_old_records(cls, days: int = 7) -> int:
        return await sync_to_async(cls.cleanup_old_records)(days)
