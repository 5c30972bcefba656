"""``manage.py runwsgateway``: run the local API Gateway emulator in front of this project.

The configuration comes from an ``ApiGateway`` row (``--pk`` or ``--api-id``: its api id, stage,
target base endpoint, route selection expression, additional routes and route responses) plus the
gateway secret and header names of ``settings.AWS_WS_ASYNC``; any flag overrides them. Without a
row, ``--target`` is required. ``--create-gateway`` creates (or reuses) the local row with
``--api-id`` (default ``localdev``), because ``$connect`` accepts only API ids it has a row
for; running with ``--target`` and no row against a view of this project that needs one is
refused up front instead of starting and then refusing every connect. The emulator itself
receives only a plain :class:`~aws_ws_async.emulator.EmulatorConfig`; it never touches Django.
The flags are shared with ``python -m aws_ws_async.emulator`` (:mod:`aws_ws_async.emulator.cli`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import Resolver404, resolve

from aws_ws_async.conf import get_settings
from aws_ws_async.emulator import EmulatorConfig, GatewayEmulator, cli
from aws_ws_async.models import ApiGateway
from aws_ws_async.testing.local_gateway import DEFAULT_LOCAL_API_ID, ensure_local_gateway

DEFAULT_LOCAL_TARGET = "http://127.0.0.1:8000/ws/"


def has_output_handler(logger: logging.Logger) -> bool:
    """Whether a record of ``logger`` already reaches a real handler through propagation.

    ``NullHandler`` (what a test settings module uses to silence output) does not count.
    """
    current: logging.Logger | None = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def view_refusing_unknown_ids(target: str, api_id: str) -> str | None:
    """The dotted name of this project's view at ``<target>connect`` if it would refuse
    every ``$connect`` from an API id without a row, else None.

    The target's path is resolved against ``ROOT_URLCONF``; a target this project does not
    route (another backend, a fake) is not judged.
    """
    path = (urlsplit(target).path or "/") + "connect"
    try:
        match = resolve(path)
    except Resolver404:
        return None
    view_class = getattr(match.func, "view_class", None)
    if view_class is None or not hasattr(view_class, "aws_api_gateway_id"):
        return None
    pinned = view_class.aws_api_gateway_id
    if pinned == api_id:
        return None
    return f"{view_class.__module__}.{view_class.__qualname__}"


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
        source.add_argument(
            "--create-gateway",
            action="store_true",
            help="Create (or reuse) the local ApiGateway row with --api-id (default "
            f"{DEFAULT_LOCAL_API_ID!r}), --stage and --target (default {DEFAULT_LOCAL_TARGET}), so "
            "this project's $connect accepts the emulator. Never pushes to AWS.",
        )
        source.add_argument(
            "--allow-unknown-gateway",
            action="store_true",
            help="Start even though the target view has no row for the api id (the target is "
            "not this project, or its view sets aws_api_gateway_id).",
        )
        cli.add_arguments(parser)

    def build_config(self, options: dict[str, Any]) -> EmulatorConfig:
        """The emulator configuration from the row, settings and flags (flags win)."""
        app_settings = get_settings()
        row = (
            self._create_row(options) if options.get("create_gateway") else self._find_row(options)
        )
        base: dict[str, Any] = {
            "api_id": (row.api_id if row else options.get("api_id")) or "emulator",
            "gateway_secret": app_settings.gateway_secret,
            "gateway_secret_header": app_settings.gateway_secret_header,
            "connection_id_header": app_settings.connection_id_header,
        }
        if row is not None:
            base.update(
                target_base_url=row.target_base_endpoint,
                stage=row.stage_name,
                route_selection_expression=row.route_selection_expression,
                additional_routes={
                    r.route_key: r.integration_url for r in row.additional_routes.all()
                },
                route_responses=bool(row.enable_route_responses),
            )
        try:
            config = cli.build_config(options, base)
        except ValueError as exc:
            if "no backend URL" in str(exc):
                raise CommandError(
                    "No backend URL: add --create-gateway (a local row in front of "
                    f"{DEFAULT_LOCAL_TARGET}), pass --target, or choose an ApiGateway row with "
                    "a target_base_endpoint (--pk/--api-id)."
                ) from exc
            raise CommandError(str(exc)) from exc
        if row is None and not options.get("allow_unknown_gateway"):
            self._refuse_unknown_gateway(config.target_base_url, config.api_id)
        return config

    def _create_row(self, options: dict[str, Any]) -> ApiGateway:
        if options.get("pk") is not None:
            raise CommandError("--create-gateway takes --api-id, not --pk.")
        api_id = options.get("api_id") or DEFAULT_LOCAL_API_ID
        try:
            row, created = ensure_local_gateway(
                api_id,
                target_base_endpoint=options.get("target") or DEFAULT_LOCAL_TARGET,
                stage=options.get("stage") or "local",
                api_endpoint=f"ws://{options['host']}:{options['port'] or cli.DEFAULT_PORT}",
            )
        except ValidationError as exc:
            problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise CommandError(f"Cannot create the local gateway {api_id!r}: {problems}") from exc
        verb = "Created" if created else "Reusing"
        self.stdout.write(
            f"{verb} the local ApiGateway {row.api_name!r} (pk={row.pk}, api id {api_id!r})."
        )
        return row

    def _refuse_unknown_gateway(self, target: str, api_id: str) -> None:
        view = view_refusing_unknown_ids(target, api_id)
        if view is None:
            return
        raise CommandError(
            f"No ApiGateway row has api id {api_id!r}, and {view} (at {target}connect) accepts "
            "only api ids it has a row for: every $connect would be refused (unknown_gateway). "
            f"Add --create-gateway to create the local row {DEFAULT_LOCAL_API_ID!r} (or "
            "--create-gateway --api-id NAME), choose an existing row with --pk/--api-id, or pass "
            "--allow-unknown-gateway if the target is not this project."
        )

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
        # Ctrl-C and SIGTERM both close every socket and post its $disconnect (cli.serve).
        try:
            asyncio.run(cli.serve(emulator, options["host"], options["port"], self._announce))
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            where = f"{options['host']}:{options['port']}"
            raise CommandError(f"Could not listen on {where}: {exc}") from exc
        self.stdout.write("Emulator stopped.")

    def _announce(self, emulator: GatewayEmulator) -> None:
        self.stdout.write(cli.banner(emulator))
        configured = get_settings().management_endpoint_url
        expected = f"http://{emulator.host}:{emulator.port}/"
        if not configured or not configured.startswith(expected):
            self.stdout.write(
                self.style.WARNING(
                    "Point AWS_WS_ASYNC['management_endpoint_url'] at "
                    f"'{expected}{{stage}}' so messages reach this emulator."
                )
            )
        sys.stdout.flush()

    def _setup_logging(self, verbosity: int) -> None:
        """Print the emulator's lines on stderr unless the project's logging already does.

        A project that configures a handler on ``aws_ws_async`` (or the root logger) gets every
        line through propagation; adding ours on top of it printed each line twice.
        """
        logger = logging.getLogger("aws_ws_async.emulator")
        if verbosity < 1 or has_output_handler(logger):
            if verbosity > 1:
                logger.setLevel(logging.DEBUG)
            return
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbosity > 1 else logging.INFO)
