"""``manage.py sendWebSocketMessage``: the predecessor's name of ``send_websocket_message``.

Same options and exit codes: one implementation, this thin subclass only keeps existing
scripts and cron jobs working.
"""

from __future__ import annotations

from aws_ws_async.management.commands.send_websocket_message import Command as _Command


class Command(_Command):
    """``send_websocket_message`` under its camelCase name."""
