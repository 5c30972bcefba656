"""Command-line flags of the emulator, shared by ``manage.py runwsgateway`` and
``python -m aws_ws_async.emulator`` (which needs no Django project at all).

Flags default to ``None`` so a caller can tell "not given" from a value: ``runwsgateway`` fills
the gaps from an ``ApiGateway`` row and the project's settings, the plain CLI from
:class:`EmulatorConfig`'s defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from aws_ws_async.emulator.config import (
    MAX_IN_FLIGHT_PER_CONNECTION,
    MAX_QUEUED_PER_CONNECTION,
    EmulatorConfig,
    Faults,
    Limits,
)
from aws_ws_async.emulator.server import GatewayEmulator

DEFAULT_PORT = 8001


def _route(value: str) -> tuple[str, str]:
    key, sep, url = value.partition("=")
    if not sep or not key or not url:
        raise argparse.ArgumentTypeError(f"expected KEY=URL, got {value!r}")
    return key, url


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every way of starting the emulator understands."""
    where = parser.add_argument_group("listening")
    where.add_argument("--host", default="127.0.0.1", help="Default 127.0.0.1.")
    where.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"Default {DEFAULT_PORT} (0: any free)."
    )
    api = parser.add_argument_group("the emulated API")
    api.add_argument("--target", help="Backend base URL, e.g. http://127.0.0.1:8000/ws/.")
    api.add_argument("--stage", help="Stage name, the URL path (default 'local').")
    api.add_argument("--route-selection-expression", help="Default $request.body.action.")
    api.add_argument(
        "--route",
        action="append",
        default=[],
        type=_route,
        metavar="KEY=URL",
        help="An additional route and its integration URL (repeatable).",
    )
    api.add_argument(
        "--route-responses",
        action="store_true",
        default=None,
        help="Relay a message's backend response body to its sender.",
    )
    api.add_argument("--secret", help="Gateway secret header value.")
    api.add_argument("--secret-header", help="Default X-Ws-Gateway-Secret.")
    api.add_argument("--connection-id-header", help="Default Connectionid.")
    limits = parser.add_argument_group("limits (API Gateway's by default)")
    limits.add_argument("--idle-timeout", type=float, help="Seconds (default 600).")
    limits.add_argument("--max-age", type=float, help="Seconds (default 7200).")
    limits.add_argument(
        "--idle-inbound-only",
        action="store_true",
        default=None,
        help="Only the client's frames reset the idle timeout (default: posts do too).",
    )
    limits.add_argument("--integration-timeout", type=float, help="Seconds (default 29).")
    bounds = parser.add_argument_group("the emulator's own bounds")
    bounds.add_argument(
        "--max-in-flight",
        type=int,
        help="Message posts of one connection waiting for the backend at once "
        f"(default {MAX_IN_FLIGHT_PER_CONNECTION}).",
    )
    bounds.add_argument(
        "--max-queued",
        type=int,
        help="Frames of one connection waiting behind them; more get 'Too Many Requests' "
        f"(default {MAX_QUEUED_PER_CONNECTION}).",
    )
    bounds.add_argument(
        "--shutdown-grace",
        type=float,
        help="Seconds Ctrl-C/SIGTERM lets closes and posts finish before cancelling (default 5).",
    )
    faults = parser.add_argument_group("fault injection on @connections")
    faults.add_argument("--throttle-rate", type=float, help="Fraction answered 429.")
    faults.add_argument("--latency", type=float, help="Seconds added to every answer.")
    faults.add_argument("--disconnect-loss-rate", type=float, help="Fraction of lost $disconnect.")
    faults.add_argument("--seed", type=int, help="Seed of the fault generator.")


def build_config(
    options: Mapping[str, Any], base: Mapping[str, Any] | None = None
) -> EmulatorConfig:
    """Flags given in ``options`` win over ``base`` (``EmulatorConfig`` field names), which wins
    over the defaults. Raises ``ValueError`` with a readable message for unusable values."""
    fields: dict[str, Any] = dict(base or {})

    def take(option: str, field: str) -> None:
        value = options.get(option)
        if value is not None:
            fields[field] = value

    take("target", "target_base_url")
    take("stage", "stage")
    take("route_selection_expression", "route_selection_expression")
    take("route_responses", "route_responses")
    take("secret", "gateway_secret")
    take("secret_header", "gateway_secret_header")
    take("connection_id_header", "connection_id_header")
    take("shutdown_grace", "shutdown_grace")
    routes = dict(fields.get("additional_routes") or {})
    routes.update(dict(options.get("route") or []))
    fields["additional_routes"] = routes
    if not fields.get("target_base_url"):
        raise ValueError("no backend URL: pass --target, e.g. http://127.0.0.1:8000/ws/")

    limit_values: dict[str, Any] = {
        name: options[option]
        for option, name in (
            ("idle_timeout", "idle_timeout"),
            ("max_age", "max_connection_age"),
            ("integration_timeout", "integration_timeout"),
            ("max_in_flight", "max_in_flight_per_connection"),
            ("max_queued", "max_queued_per_connection"),
        )
        if options.get(option) is not None
    }
    if options.get("idle_inbound_only"):
        limit_values["idle_resets_on_outbound"] = False
    fault_values = {
        name: options[name]
        for name in ("throttle_rate", "latency", "disconnect_loss_rate", "seed")
        if options.get(name) is not None
    }
    fields["limits"] = Limits(**limit_values)
    fields["faults"] = Faults(**fault_values)
    return EmulatorConfig(**fields)


def banner(emulator: GatewayEmulator) -> str:
    config = emulator.config
    return (
        f"API Gateway emulator for api {config.api_id!r}, stage {config.stage!r}\n"
        f"  clients connect to   {emulator.url}\n"
        f"  integrations post to {config.target_base_url}{{connect,default,disconnect}}\n"
        f"  @connections API at  {emulator.management_url}\n"
        "Quit with CTRL-C (or SIGTERM)."
    )


async def serve(
    emulator: GatewayEmulator,
    host: str,
    port: int,
    announce: Callable[[GatewayEmulator], None],
) -> None:
    """Start, announce, serve until SIGTERM or cancelled (Ctrl-C under ``asyncio.run``), then
    stop cleanly: every socket closed with 1001 and its ``$disconnect`` posted within the
    configuration's ``shutdown_grace``.

    SIGTERM is what ``docker stop``, systemd and process managers send; without a handler it
    kills the process at once and the backend never hears the ``$disconnect``s. It returns
    normally here, so the process exits 0 as after Ctrl-C.
    """
    await emulator.start(host, port)
    loop = asyncio.get_running_loop()
    terminated = asyncio.Event()
    installed = False
    # Not on Windows' loops, nor outside the main thread: Ctrl-C still works there.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, terminated.set)
        installed = True
    try:
        announce(emulator)
        await terminated.wait()
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)
        await asyncio.shield(emulator.stop())


def main(argv: list[str] | None = None, stdout: TextIO = sys.stdout) -> int:
    """``python -m aws_ws_async.emulator --target http://127.0.0.1:8000/ws/ [...]``."""
    import logging

    parser = argparse.ArgumentParser(
        prog="python -m aws_ws_async.emulator",
        description="A local API Gateway WebSocket API in front of an HTTP backend.",
    )
    parser.add_argument("--api-id", help="The emulated API id (default 'emulator').")
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        config = build_config(options, {"api_id": options["api_id"]} if options["api_id"] else {})
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    def announce(emulator: GatewayEmulator) -> None:
        print(banner(emulator), file=stdout, flush=True)

    try:
        asyncio.run(serve(GatewayEmulator(config), options["host"], options["port"], announce))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"Could not listen on {options['host']}:{options['port']}: {exc}", file=sys.stderr)
        return 1
    print("Emulator stopped.", file=stdout, flush=True)
    return 0
