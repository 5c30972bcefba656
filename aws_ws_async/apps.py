"""App configuration: registers system checks and connects receivers when Django is ready.

Nothing is wired by importing a module: :meth:`AwsWsAsyncConfig.ready` does it, once.
"""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AwsWsAsyncConfig(AppConfig):
    name = "aws_ws_async"
    verbose_name = _("AWS API Gateway WebSockets")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Checks register themselves with @register when imported; receivers are connected
        # here, each once (dispatch_uid), never as a side effect of importing a module.
        from aws_ws_async import checks, conf, receivers  # noqa: F401

        receivers.connect()
        from aws_ws_async.delivery.budget import install_default
        from aws_ws_async.scaleout.budgets import send_budgets

        install_default(send_budgets)  # asend_message takes permits when rate_budget_in_send
