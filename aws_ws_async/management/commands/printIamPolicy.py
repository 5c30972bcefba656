"""``manage.py printIamPolicy``: the predecessor's name of ``print_iam_policy``.

Same options and exit codes: one implementation, this thin subclass only keeps existing
scripts and cron jobs working.
"""

from __future__ import annotations

from aws_ws_async.management.commands.print_iam_policy import Command as _Command


class Command(_Command):
    """``print_iam_policy`` under its camelCase name."""
