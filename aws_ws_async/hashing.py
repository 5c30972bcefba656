"""Keyed hashes that bind sessions and tokens to a browser session and a password.

Every verifier accepts hashes made with ``SECRET_KEY`` *or* any of ``SECRET_KEY_FALLBACKS``, so
rotating the key (Django's documented way) neither closes live WebSockets nor voids tokens that
are in flight. New hashes are always made with the current key.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac

SESSION_KEY_SALT = "aws_ws_async.session-key"
AUTH_HASH_SALT = "aws_ws_async.user-auth"


def _secrets() -> list[str]:
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def hash_session_key(session_key: str, secret: str | None = None) -> str:
    """HMAC-SHA256 (hex, 64 chars) of a Django session key."""
    return salted_hmac(SESSION_KEY_SALT, session_key, secret=secret, algorithm="sha256").hexdigest()


def session_key_hashes(session_key: str) -> list[str]:
    """The hash under the current key first, then under each fallback key."""
    return [hash_session_key(session_key, secret) for secret in _secrets()]


def hash_user_auth(user: Any, secret: str | None = None) -> str:
    """A hash that changes when the user's password changes ("" for users without one)."""
    getter = getattr(user, "get_session_auth_hash", None)
    if getter is None or not getattr(user, "is_authenticated", False):
        return ""
    # get_session_auth_hash() already mixes in SECRET_KEY; re-keying lets us honour fallbacks.
    password = getattr(user, "password", "") or ""
    return salted_hmac(AUTH_HASH_SALT, password, secret=secret, algorithm="sha256").hexdigest()


def user_auth_hashes(user: Any) -> list[str]:
    return [hash_user_auth(user, secret) for secret in _secrets()]


def matches_any(value: str, candidates: Iterable[str]) -> bool:
    """Constant-time membership test (each comparison is constant-time; all are made)."""
    found = False
    for candidate in candidates:
        if hmac.compare_digest(value.encode(), candidate.encode()):
            found = True
    return found
