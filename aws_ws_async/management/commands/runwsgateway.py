"""``manage.py runwsgateway``: run the local API Gateway emulator in front of this project.

The configuration comes from an ``ApiGateway`` row (``--pk`` or ``--api-id``: its api id, stage,
target base endpoint, route selection expression, additional routes and route responses) plus the
gateway secret and header names of ``settings.AWS_WS_ASYNC``; any flag overrides the row. Without
a row, ``--target`` is required. The emulator itself receives only a plain
:class:`~aws_ws_async.emulator.EmulatorConfig`; it never touches Django.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aws_ws_async.conf import get_settings
from aws_ws_async.emulator import EmulatorConfig, Faults, GatewayEmulator, Limits
from aws_ws_async.models import ApiGateway


def _route(value: str) -> tuple[str, str]:
    key, sep, url = value.partition("=")
    if not sep or not key or not url:
        raise ValueError(value)
    return key, url


class Command(BaseCommand):
    help = (
        "Run a local API Gateway WebSocket emulator: clients connect to ws://HOST:PORT/<stage>, "
        "integrations are posted to this project, and the @connections API answers on the "
        "same port."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_argument_group("gateway row (optional)")
        source.add_argument("--pk", type=int, help="Primary key of the ApiGateway row to emulate.")
        source.add_argument(
            "--api-id",
            help="Api id of the ApiGateway row to emulate; without such a row (and with "
            "--target) the emulated API's id.",
        )
        where = parser.add_argument_group("listening")
        where.add_argument("--host", default="127.0.0.1", help="Default 127.0.0.1.")
        where.add_argument("--port", type=int, default=8001, help="Default 8001 (0: any free).")
        api = parser.add_argument_group("API (override the row)")
        api.add_argument("--target", help="Backend base URL, e.g. http://127.0.0.1:8000/ws/.")
        api.add_argument("--stage", help="Stage name (the URL path); default the row's or 'local'.")
        api.add_argument("--route-selection-expression", help="Default $request.body.action.")
        api.add_argument(
            "--route",
            action="append",
            default=[],
            type=_route,
            metavar="KEY=URL",
            help="An additional route and its integration URL (repeatable).",
        )
        api.add_argument("--route-responses", action="store_true", default=None)
        api.add_argument("--secret", help="Gateway secret header value (default: the setting).")
        limits = parser.add_argument_group("limits (API Gateway's by default)")
        limits.add_argument("--idle-timeout", type=float, default=Limits.idle_timeout)
        limits.add_argument("--max-age", type=float, default=Limits.max_connection_age)
        limits.add_argument("--integration-timeout", type=float, default=Limits.integration_timeout)
        faults = parser.add_argument_group("fault injection on @connections")
        faults.add_argument("--throttle-rate", type=float, default=0.0, help="Fraction of 429s.")
        faults.add_argument("--latency", type=float, default=0.0, help="Seconds per answer.")
        faults.add_argument(
            "--disconnect-loss-rate", type=float, default=0.0, help="Fraction of lost $disconnects."
        )
        faults.add_argument("--seed", type=int, default=None)

    def build_config(self, options: dict[str, Any]) -> EmulatorConfig:
        """The emulator configuration from the row and flags; ``CommandError`` when unusable."""
        app_settings = get_settings()
        row = self._find_row(options)
        api_id = (row.api_id if row else options.get("api_id")) or "emulator"
        target = options.get("target") or (row.target_base_endpoint if row else None)
        if not target:
            raise CommandError(
                "No backend URL: pass --target http://127.0.0.1:8000/ws/ or choose an ApiGateway "
                "row with a target_base_endpoint (--pk/--api-id)."
            )
        routes: dict[str, str] = {}
        if row is not None:
            routes = {r.route_key: r.integration_url for r in row.additional_routes.all()}
        routes.update(dict(options.get("route") or []))
        route_responses = options.get("route_responses")
        if route_responses is None:
            route_responses = bool(row.enable_route_responses) if row else False
        try:
            return EmulatorConfig(
                target_base_url=target,
                api_id=api_id,
                stage=options.get("stage") or (row.stage_name if row else "local"),
                route_selection_expression=options.get("route_selection_expression")
                or (row.route_selection_expression if row else "$request.body.action"),
                additional_routes=routes,
                route_responses=route_responses,
                gateway_secret=options.get("secret") or app_settings.gateway_secret,
                gateway_secret_header=app_settings.gateway_secret_header,
                connection_id_header=app_settings.connection_id_header,
                limits=Limits(
                    idle_timeout=options.get("idle_timeout", Limits.idle_timeout),
                    max_connection_age=options.get("max_age", Limits.max_connection_age),
                    integration_timeout=options.get(
                        "integration_timeout", Limits.integration_timeout
                    ),
                ),
                faults=Faults(
                    throttle_rate=options.get("throttle_rate", 0.0),
                    latency=options.get("latency", 0.0),
                    disconnect_loss_rate=options.get("disconnect_loss_rate", 0.0),
                    seed=options.get("seed"),
                ),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc

    def _find_row(self, options: dict[str, Any]) -> ApiGateway | None:
        pk, api_id = options.get("pk"), options.get("api_id")
        if pk is not None:
            row = ApiGateway.objects.filter(pk=pk).first()
            if row is None:
                raise CommandError(f"No ApiGateway with pk={pk}.")
        elif api_id:
            row = ApiGateway.objects.filter(api_id=api_id).first()
            if row is None:
                if options.get("target"):
                    return None
                raise CommandError(
                    f"No ApiGateway with api_id={api_id!r}; pass --target to run without a row."
                )
        else:
            return None
        if not row.api_id:
            raise CommandError(
                f"ApiGateway {row.pk} has no api_id, so the backend could not recognise the "
                "emulated requests. Set one (e.g. 'localdev') before emulating it."
            )
        return row

    def handle(self, *args: Any, **options: Any) -> None:
        config = self.build_config(options)
        self._setup_logging(int(options.get("verbosity", 1)))
        emulator = GatewayEmulator(config)
        try:
            asyncio.run(self._serve(emulator, options["host"], options["port"]))
        except KeyboardInterrupt:
            self.stdout.write("Emulator stopped.")
        except OSError as exc:
            where = f"{options['host']}:{options['port']}"
            raise CommandError(f"Could not listen on {where}: {exc}") from exc

    async def _serve(self, emulator: GatewayEmulator, host: str, port: int) -> None:
        await emulator.start(host, port)
        config = emulator.config
        self.stdout.write(
            f"API Gateway emulator for api {config.api_id!r}, stage {config.stage!r}\n"
            f"  clients connect to   {emulator.url}\n"
            f"  integrations post to {config.target_base_url}{{connect,default,disconnect}}\n"
            f"  @connections API at  {emulator.management_url}\n"
            "Quit with CTRL-C."
        )
        configured = get_settings().management_endpoint_url
        expected = f"http://{host}:{emulator.port}/"
        if not configured or not configured.startswith(expected):
            self.stdout.write(
                self.style.WARNING(
                    "Point AWS_WS_ASYNC['management_endpoint_url'] at "
                    f"'http://{host}:{emulator.port}/{{stage}}' so messages reach this emulator."
                )
            )
        sys.stdout.flush()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(emulator.stop())

    def _setup_logging(self, verbosity: int) -> None:
        logger = logging.getLogger("aws_ws_async.emulator")
        if verbosity < 1 or any(isinstance(h, logging.StreamHandler) for h in logger.handlers):
            return
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
