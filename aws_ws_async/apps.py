"""App configuration: registers system checks and signal receivers when Django is ready."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AwsWsAsyncConfig(AppConfig):
    name = "aws_ws_async"
    verbose_name = _("AWS API Gateway WebSockets")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing registers the checks and receivers; nothing else runs at import time.
        from aws_ws_async import (  # noqa: F401
            checks,
            conf,
            signals,
        )
