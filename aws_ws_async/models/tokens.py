"""One-time tokens that let a logged-in browser open a WebSocket.

The browser POSTs to ``WebSocketTokenView`` (CSRF-protected) and gets a random token, which it
passes as ``?ws_token=`` on the ``wss://`` URL. Only a SHA-256 digest of the token is stored, so
a database reader cannot connect as anyone. A token is bound to an HMAC of the browser's session
key, expires after ``token_expiry_seconds`` and is consumed by one conditional UPDATE whose row
count decides, so two concurrent ``$connect`` calls can never both spend it (no row locks).

A token dies with its Django session: ``$connect`` spends it only while the browser session it
is bound to still exists and still authenticates the token's user with a valid session auth
hash (so logout, ``session.flush()`` and a password change void it even if no receiver ran),
and :meth:`WebSocketToken.revoke_for_user` / :meth:`~WebSocketToken.revoke_for_session` mark
unspent tokens used when the receivers learn of a logout or a password change.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any, NamedTuple

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext_lazy as _

from aws_ws_async.hashing import hash_session_key, session_key_hashes
from aws_ws_async.validators import TOKEN_RE, validate_token


def digest_token(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


class _SpendQueries(NamedTuple):
    """The conditional UPDATE's rows and timestamp, and the query for the token's owner."""

    rows: models.QuerySet[WebSocketToken]
    now: datetime
    owner: models.QuerySet[Any]


class WebSocketToken(models.Model):
    """A single-use, short-lived connect token (only its digest is stored)."""

    token = models.CharField(
        max_length=64,
        unique=True,
        validators=[validate_token],
        help_text=_("SHA-256 digest of the token handed to the browser."),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="websocket_tokens"
    )
    session_key_hash = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    used = models.BooleanField(default=False)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("WebSocket token")
        indexes = [models.Index(fields=["user", "created_at"], name="wst_user_created")]

    def __str__(self) -> str:
        return f"token for user {self.user_id} ({'used' if self.used else 'unused'})"

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires_at

    # --- issuing ---------------------------------------------------------------------------

    @classmethod
    def issue(
        cls,
        user: Any,
        session_key: str,
        *,
        expiry_seconds: int,
        max_per_minute: int,
    ) -> str | None:
        """Create a token for ``user``; None when the user is over the per-minute limit.

        Insert first, then count: the k-th token admitted in a window saw at least k rows when
        it counted, so concurrent requests can never exceed the limit (no count-then-insert
        race). A refused token is deleted again and never returned.
        """
        raw = secrets.token_hex(32)
        now = timezone.now()
        row = cls.objects.create(
            token=digest_token(raw),
            user=user,
            session_key_hash=hash_session_key(session_key),
            created_at=now,
            expires_at=now + timedelta(seconds=expiry_seconds),
        )
        recent = cls.objects.filter(user=user, created_at__gt=now - timedelta(minutes=1)).count()
        if recent > max_per_minute:
            row.delete()
            return None
        return raw

    @classmethod
    async def aissue(
        cls, user: Any, session_key: str, *, expiry_seconds: int, max_per_minute: int
    ) -> str | None:
        return await sync_to_async(cls.issue)(
            user, session_key, expiry_seconds=expiry_seconds, max_per_minute=max_per_minute
        )

    # --- consuming -------------------------------------------------------------------------

    @classmethod
    def _unspent_rows(
        cls, digest: str, session_key: str, now: datetime
    ) -> models.QuerySet[WebSocketToken]:
        """Rows a token digest may still be spent from: unused, unexpired, bound to the session."""
        return cls.unspent_rows_for(digest, session_key_hashes(session_key), now)

    @classmethod
    def unspent_rows_for(
        cls, digest: str, key_hashes: list[str], now: datetime
    ) -> models.QuerySet[WebSocketToken]:
        """The same rows, from the session key's hashes (``$connect`` compiles this once)."""
        return cls.objects.filter(
            token=digest, used=False, expires_at__gt=now, session_key_hash__in=key_hashes
        )

    @classmethod
    def _spend_queries(cls, raw_token: object, session_key: str) -> _SpendQueries | None:
        """What :meth:`consume` and :meth:`aconsume` run, built once for both.

        None for malformed input, which never reaches the database; the two callers differ only
        in running the UPDATE and the owner lookup sync or async.
        """
        if not isinstance(raw_token, str) or TOKEN_RE.fullmatch(raw_token) is None:
            return None
        if not session_key:
            return None
        digest = digest_token(raw_token)
        now = timezone.now()
        owner = get_user_model()._default_manager.filter(
            websocket_tokens__token=digest, is_active=True
        )
        return _SpendQueries(cls._unspent_rows(digest, session_key, now), now, owner)

    @classmethod
    def consume(cls, raw_token: str, session_key: str) -> Any | None:
        """Spend the token and return its (active) user, or None. Two queries at most."""
        queries = cls._spend_queries(raw_token, session_key)
        if queries is None:
            return None
        if queries.rows.update(used=True, used_at=queries.now) != 1:
            return None
        return queries.owner.first()

    @classmethod
    async def aconsume(cls, raw_token: str, session_key: str) -> Any | None:
        queries = cls._spend_queries(raw_token, session_key)
        if queries is None:
            return None
        if await queries.rows.aupdate(used=True, used_at=queries.now) != 1:
            return None
        return await queries.owner.afirst()

    # --- two-step consumption for $connect (read, then spend) -------------------------------

    @classmethod
    def unspent(cls, raw_token: object, session_key: object) -> models.QuerySet[WebSocketToken]:
        """The unspent, unexpired token with this value bound to this session (0 or 1 row).

        Malformed input gives an empty queryset that never reaches the database. ``$connect``
        reads the row first (to learn the user, for the rate limit) and spends it with
        :meth:`aspend` only once every other check passed, so a refused attempt does not burn
        the browser's token.
        """
        if not isinstance(raw_token, str) or TOKEN_RE.fullmatch(raw_token) is None:
            return cls.objects.none()
        if not isinstance(session_key, str) or not session_key or len(session_key) > 256:
            return cls.objects.none()
        return cls._unspent_rows(digest_token(raw_token), session_key, timezone.now())

    def spend(self) -> bool:
        """Mark this token used; True only for the one caller whose UPDATE changed the row.

        A conditional UPDATE (``used=False`` and not expired in the WHERE clause) decides, so
        concurrent ``$connect`` calls with the same token can never both succeed, without row
        locks or a transaction.
        """
        now = timezone.now()
        spent = self.spend_rows(self.pk, now).update(**self.spend_values(now))
        if spent == 1:
            self.used = True
            self.used_at = now
        return spent == 1

    @staticmethod
    def spend_rows(pk: Any, now: datetime) -> models.QuerySet[WebSocketToken]:
        """The row :meth:`spend` changes: this token, while unused and unexpired."""
        return WebSocketToken.objects.filter(pk=pk, used=False, expires_at__gt=now)

    @staticmethod
    def spend_values(now: datetime) -> dict[str, Any]:
        return {"used": True, "used_at": now}

    @staticmethod
    def unspend_rows(pk: Any, used_at: datetime) -> models.QuerySet[WebSocketToken]:
        """The row :meth:`unspend` gives back: only as this instance spent it."""
        return WebSocketToken.objects.filter(pk=pk, used=True, used_at=used_at)

    #: What :meth:`unspend` writes.
    UNSPEND_VALUES: Mapping[str, Any] = {"used": False, "used_at": None}

    async def aspend(self) -> bool:
        return await sync_to_async(self.spend)()

    def unspend(self) -> bool:
        """Give the token back after a refusal that came after :meth:`spend` (a duplicate
        connection id): only the row this instance spent, so a concurrent spend is kept."""
        if not self.used or self.used_at is None:
            return False
        restored = self.unspend_rows(self.pk, self.used_at).update(**self.UNSPEND_VALUES)
        if restored == 1:
            self.used, self.used_at = False, None
        return restored == 1

    async def aunspend(self) -> bool:
        return await sync_to_async(self.unspend)()

    # --- the bound Django session -------------------------------------------------------------

    def session_matches(self, data: Mapping[str, Any]) -> bool:
        """Whether loaded session ``data`` still authenticates this token's user.

        The same test ``django.contrib.auth.get_user`` makes: the session names the user, and
        its auth hash equals the user's current one (or one made with a fallback key), so a
        password change voids the session and the token with it. An empty (deleted, flushed,
        expired) session matches nobody.
        """
        user = self.user
        if not data or SESSION_KEY not in data:
            return False
        try:
            session_user = user._meta.pk.to_python(data[SESSION_KEY])
        except (ValidationError, TypeError, ValueError):
            return False
        if session_user != user.pk:
            return False
        stored = data.get(HASH_SESSION_KEY)
        if not isinstance(stored, str) or not stored:
            return False
        candidates = [user.get_session_auth_hash()]
        fallbacks = getattr(user, "get_session_auth_fallback_hash", None)
        if fallbacks is not None:
            candidates.extend(fallbacks())
        matched = False
        for candidate in candidates:  # every comparison is made (constant time overall)
            if constant_time_compare(stored, candidate):
                matched = True
        return matched

    @staticmethod
    def _session_store(session_key: str) -> Any:
        return import_module(settings.SESSION_ENGINE).SessionStore(session_key)

    def session_is_live(self, session_key: str) -> bool:
        """The bound session still exists and belongs to this token's user (one read)."""
        return self.session_matches(self._session_store(session_key).load())

    async def asession_is_live(self, session_key: str) -> bool:
        return self.session_matches(await self._session_store(session_key).aload())

    # --- revocation --------------------------------------------------------------------------

    @classmethod
    def _revoke(cls, rows: models.QuerySet[WebSocketToken]) -> int:
        return rows.filter(used=False).update(used=True, used_at=timezone.now())

    @classmethod
    def _user_rows(cls, user: Any) -> models.QuerySet[WebSocketToken]:
        """The user's unspent tokens, on the user row's own database."""
        state = getattr(user, "_state", None)
        manager = cls.objects.db_manager(getattr(state, "db", None))
        return manager.filter(user_id=user.pk, used=False)

    @classmethod
    def revoke_for_user(cls, user: Any) -> int:
        """Spend every unspent token of ``user`` (logout, password change); returns how many."""
        if getattr(user, "pk", None) is None:
            return 0
        return cls._revoke(cls._user_rows(user))

    @classmethod
    async def arevoke_for_user(cls, user: Any) -> int:
        if getattr(user, "pk", None) is None:
            return 0
        return await cls._user_rows(user).aupdate(used=True, used_at=timezone.now())

    @classmethod
    def revoke_for_session(cls, session_key: str) -> int:
        """Spend every unspent token bound to this browser session (a flush, a logout)."""
        if not isinstance(session_key, str) or not session_key:
            return 0
        return cls._revoke(cls.objects.filter(session_key_hash__in=session_key_hashes(session_key)))

    @classmethod
    async def arevoke_for_session(cls, session_key: str) -> int:
        return await sync_to_async(cls.revoke_for_session)(session_key)

    # --- housekeeping ----------------------------------------------------------------------

    @classmethod
    def cleanup_expired(cls, max_age_seconds: int = 300) -> int:
        """Delete tokens created more than ``max_age_seconds`` ago, used or not."""
        cutoff = timezone.now() - timedelta(seconds=max_age_seconds)
        deleted, _ = cls.objects.filter(created_at__lt=cutoff).delete()
        return deleted

    @classmethod
    async def acleanup_expired(cls, max_age_seconds: int = 300) -> int:
        return await sync_to_async(cls.cleanup_expired)(max_age_seconds)
