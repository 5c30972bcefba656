"""``manage.py updateApiGatewayIntegrations``: the predecessor's name of
``update_api_gateway_integrations``.

Same options and exit codes: one implementation, this thin subclass only keeps existing
scripts and cron jobs working.
"""

from __future__ import annotations

from aws_ws_async.management.commands.update_api_gateway_integrations import Command as _Command


class Command(_Command):
    """``update_api_gateway_integrations`` under its camelCase name."""
