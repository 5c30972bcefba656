"""``manage.py clearWebSocketSessions``: the predecessor's name of ``clear_websocket_sessions``.

Same options and exit codes: one implementation, this thin subclass only keeps existing
scripts and cron jobs working.
"""

from __future__ import annotations

from aws_ws_async.management.commands.clear_websocket_sessions import Command as _Command


class Command(_Command):
    """``clear_websocket_sessions`` under its camelCase name."""
