"""``manage.py syncApiGateway``: the predecessor's name of ``sync_api_gateway``.

Same options and exit codes: one implementation, this thin subclass only keeps existing
scripts and cron jobs working.
"""

from __future__ import annotations

from aws_ws_async.management.commands.sync_api_gateway import Command as _Command


class Command(_Command):
    """``sync_api_gateway`` under its camelCase name."""
