"""Rows that record ``$connect`` attempts, for an atomic sliding-window limit.

Each attempt is inserted *before* the window is counted. Counting after inserting is what
makes the limit race-free without locks: the k-th request to be admitted saw at least k rows,
so at most ``max_attempts`` are ever admitted per window however many arrive at once. Refused
attempts are recorded too, so a client hammering the endpoint stays refused.

``successful`` means "admitted": rows start as admitted (the common case costs one INSERT) and
are flipped with a ``reason`` when the attempt is refused later in ``$connect``; attempts
refused before the limit check are inserted as refused directly (``arecord_refusal``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
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
        """Attempts in the window by this IP and by this user, in one aggregate query.

        The WHERE clause selects only this IP's and this user's rows (each side served by its
        composite index), so the cost does not grow with other clients' traffic.
        """
        user_id = getattr(user, "pk", None)
        if not ip_address and not user_id:
            return 0, 0
        rows, counts = cls.window_query(ip_address, user_id, timezone.now() - window)
        aggregate = rows.aggregate(**counts)
        return int(aggregate.get("by_ip") or 0), int(aggregate.get("by_user") or 0)

    @classmethod
    def window_query(
        cls, ip_address: str | None, user_id: Any, since: datetime
    ) -> tuple[models.QuerySet[ConnectionRateLimit], dict[str, Count]]:
        """The rows of the window and the counts over them (``by_ip``, ``by_user``, in that
        order, each only when there is an address or a user): ``$connect`` compiles this once."""
        who = Q()
        if ip_address:
            who |= Q(ip_address=ip_address)
        if user_id:
            who |= Q(user_id=user_id)
        counts: dict[str, Count] = {}
        if ip_address:
            counts["by_ip"] = Count("pk", filter=Q(ip_address=ip_address))
        if user_id:
            counts["by_user"] = Count("pk", filter=Q(user_id=user_id))
        return cls.objects.filter(who, attempt_time__gt=since), counts

    @classmethod
    def record_and_check(
        cls,
        ip_address: str | None,
        user: Any | None,
        *,
        max_attempts: int,
        window: timedelta,
    ) -> tuple[bool, ConnectionRateLimit]:
        """Record an attempt, then decide: allowed only if neither count exceeds the limit.

        The row is inserted as ``successful=True`` (the common case costs no second write);
        callers that refuse the attempt later call :meth:`mark_refused`.
        """
        attempt = cls.objects.create(
            ip_address=ip_address,
            user=user if getattr(user, "pk", None) else None,
            successful=True,
        )
        by_ip, by_user = cls.window_counts(ip_address, user, window)
        allowed = by_ip <= max_attempts and by_user <= max_attempts
        return allowed, attempt

    @classmethod
    async def arecord_and_check(
        cls, ip_address: str | None, user: Any | None, *, max_attempts: int, window: timedelta
    ) -> tuple[bool, ConnectionRateLimit]:
        """The sync twin in one thread hop: the INSERT and the COUNT (two queries) together,
        where awaiting each would cost a hop apiece on every ``$connect``."""
        return await sync_to_async(cls.record_and_check)(
            ip_address, user, max_attempts=max_attempts, window=window
        )

    @classmethod
    async def arecord_refusal(
        cls, ip_address: str | None, user: Any | None, reason: str
    ) -> ConnectionRateLimit:
        """Count a refused attempt (bad origin, bad token...) in one INSERT."""
        return await cls.objects.acreate(
            ip_address=ip_address,
            user=user if getattr(user, "pk", None) else None,
            successful=False,
            reason=reason[:32],
        )

    async def amark_refused(self, reason: str) -> None:
        """Turn a recorded attempt into a refused one (it stays counted either way)."""
        self.successful = False
        self.reason = reason[:32]
        await ConnectionRateLimit.objects.filter(pk=self.pk).aupdate(
            successful=False, reason=self.reason
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
