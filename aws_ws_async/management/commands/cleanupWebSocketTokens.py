"""``manage.py cleanupWebSocketTokens``: the predecessor's name of ``cleanup_websocket_tokens``.

Same options and exit codes: one implementation, this thin subclass only keeps existing
scripts and cron jobs working.
"""

from __future__ import annotations

from aws_ws_async.management.commands.cleanup_websocket_tokens import Command as _Command


class Command(_Command):
    """``cleanup_websocket_tokens`` under its camelCase name."""
