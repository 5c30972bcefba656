"""``manage.py createCustomDomain``: the predecessor's name of ``create_custom_domain``.

Same options and exit codes: one implementation, this thin subclass only keeps existing
scripts and cron jobs working.
"""

from __future__ import annotations

from aws_ws_async.management.commands.create_custom_domain import Command as _Command


class Command(_Command):
    """``create_custom_domain`` under its camelCase name."""
