"""How a connection ends: the reasons the package writes, and API Gateway's own limits.

Shared by the QuerySet (``stale()``, the bulk closes), the model (``mark_disconnected``) and
presence (the same cut-offs decide who is still listed), so it sits below all of them.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils.translation import gettext_lazy as _

#: API Gateway closes every connection after two hours and idle ones after ten minutes.
MAX_CONNECTION_AGE = timedelta(hours=2)
IDLE_TIMEOUT = timedelta(minutes=10)


class DisconnectReason(models.TextChoices):
    """``WebSocketSession.disconnect_reason`` values the package writes (at most 16 chars)."""

    CLIENT = "client", _("Client closed ($disconnect)")
    GONE = "gone", _("Gone (410 from @connections)")
    SERVER = "server", _("Closed by the server")
    LOGOUT = "logout", _("User logged out")
    USER_INVALID = "user_invalid", _("User inactive or password changed")
    STALE = "stale", _("Stale (past API Gateway's limits)")
    GATEWAY_DELETED = "gateway_deleted", _("Gateway deleted")
