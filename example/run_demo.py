#!/usr/bin/env python3
"""Run the aws_ws_async demo chat on this machine: Django under uvicorn + the local gateway.

    python example/run_demo.py            # then open http://127.0.0.1:8000/

It migrates a SQLite database (``example/db.sqlite3``), creates the demo user if it does not
exist (an existing user's password is left alone, so a restart logs no browser out;
``--reset-password`` sets it again) and the demo ``ApiGateway`` row, serves the Django ASGI
app with uvicorn (``--ws none``: API Gateway talks plain HTTP to the backend) and runs the
API Gateway emulator, both on one event loop in this process, prints the URL to open, and
stops everything cleanly on Ctrl-C (the emulator first, so every open socket's
``$disconnect`` still reaches Django). One process: nothing is left running if it is killed.

    browser --ws--> emulator :8001/local --HTTP--> Django :8000/ws/{connect,default,disconnect}
    Django --POST @connections--> emulator :8001/local/@connections/<id> --ws--> browsers
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXAMPLE_DIR = Path(__file__).resolve().parent
ROOT = EXAMPLE_DIR.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="Address of both servers.")
    parser.add_argument("--port", type=int, default=8000, help="Django (default 8000).")
    parser.add_argument("--gateway-port", type=int, default=8001, help="Emulator (default 8001).")
    parser.add_argument(
        "--db", default=str(EXAMPLE_DIR / "db.sqlite3"), help="SQLite file (default example/)."
    )
    parser.add_argument("--api-id", default="demolocal", help="Emulated API id.")
    parser.add_argument("--stage", default="local", help="Emulated stage (the socket's path).")
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="demo-password")
    parser.add_argument(
        "--reset-password",
        action="store_true",
        help="Set an existing demo user's password to --password (logs its browsers out).",
    )
    parser.add_argument(
        "--no-history",
        action="store_true",
        help="Do not turn history on for the demo rooms (messages then carry no seq).",
    )
    timers = parser.add_argument_group(
        "shortened timers (tests): the gateway's limits and the page client's matching ones"
    )
    timers.add_argument("--idle-timeout", type=float, help="Emulator idle timeout, s (600).")
    timers.add_argument("--max-age", type=float, help="Emulator maximum connection age, s (7200).")
    timers.add_argument(
        "--idle-inbound-only",
        action="store_true",
        help="Only the browser's frames reset the emulator's idle timer (posts do not).",
    )
    timers.add_argument("--client-max-age-ms", type=int, help="Page client's rotation age.")
    timers.add_argument("--client-ping-ms", type=int, help="Page client's ping interval.")
    timers.add_argument(
        "--client-subscribe-timeout-ms",
        type=int,
        help="Page client's wait for its first channel's 'subscribed' before replacing a socket.",
    )
    return parser.parse_args(argv)


def demo_env(args: argparse.Namespace, secret: str) -> dict[str, str]:
    """The environment of the demo's Django (also used by ``demo_tools.py``)."""
    env = {
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DEMO_DB_ENGINE": "sqlite",
        "DEMO_DB_NAME": str(Path(args.db).resolve()),
        "DEMO_API_ID": args.api_id,
        # A fresh shared secret per run: only this emulator can call the backend's ws/ views.
        "DEMO_GATEWAY_SECRET": secret,
        "DEMO_MANAGEMENT_ENDPOINT_URL": f"http://{args.host}:{args.gateway_port}/{{stage}}",
        # @connections calls are SigV4-signed even locally; sign them with dummy keys so a
        # fresh machine needs no AWS account and real credentials never leave for the emulator.
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name, value in (
        ("DEMO_CLIENT_MAX_AGE_MS", getattr(args, "client_max_age_ms", None)),
        ("DEMO_CLIENT_PING_MS", getattr(args, "client_ping_ms", None)),
        ("DEMO_CLIENT_SUBSCRIBE_TIMEOUT_MS", getattr(args, "client_subscribe_timeout_ms", None)),
    ):
        if value is not None:
            env[name] = str(value)
    return env


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def prepare_django(args: argparse.Namespace, env: dict[str, str]) -> Any:
    """Migrate, create the demo user and gateway row; return the emulator configuration."""
    os.environ.update(env)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    for path in (str(EXAMPLE_DIR), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    import django

    django.setup()
    from chat.views import ROOMS
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from aws_ws_async.conf import get_settings
    from aws_ws_async.emulator import EmulatorConfig, Limits
    from aws_ws_async.models import ApiGateway, ChannelHistory

    print(f"Preparing the database {args.db} ...", flush=True)
    call_command("migrate", interactive=False, verbosity=0)

    user_model = get_user_model()
    manager = user_model._default_manager
    lookup = {user_model.USERNAME_FIELD: args.username}
    user = manager.filter(**lookup).first()
    if user is None:
        user = manager.create_user(**lookup, password=args.password)  # type: ignore[attr-defined]
        args.login_hint = f"Log in as {args.username!r} with password {args.password!r}."
    elif args.reset_password:
        # A new password changes the session auth hash: every browser logged in is logged out.
        user.set_password(args.password)
        user.is_active = True
        user.save()
        args.login_hint = f"Log in as {args.username!r} with password {args.password!r} (reset)."
    else:
        # Left alone: resetting it on each start changed the session auth hash, which logged
        # every browser out at every restart.
        if not user.is_active:
            user.is_active = True
            user.save(update_fields=["is_active"])
        args.login_hint = (
            f"Log in as {args.username!r} (existing user, password unchanged; "
            "--reset-password sets it to --password)."
        )

    backend = f"http://{args.host}:{args.port}/ws/"
    gateway = ApiGateway.objects.filter(api_id=args.api_id).first() or ApiGateway(
        api_name=f"Demo ({args.api_id})", api_id=args.api_id
    )
    gateway.stage_name = args.stage
    gateway.target_base_endpoint = backend
    gateway.api_endpoint = f"ws://{args.host}:{args.gateway_port}"
    gateway.default_channel_name = "lobby"
    gateway.save(push_to_aws=False)  # type: ignore[call-arg]

    if not args.no_history:
        # History on: every message gets a seq, and a reconnecting page resumes without a gap.
        for room in ROOMS:
            ChannelHistory.objects.update_or_create(channel_name=room, defaults={"enabled": True})

    limits: dict[str, Any] = {}
    if args.idle_timeout is not None:
        limits["idle_timeout"] = args.idle_timeout
    if args.max_age is not None:
        limits["max_connection_age"] = args.max_age
    if args.idle_inbound_only:
        limits["idle_resets_on_outbound"] = False
    app_settings = get_settings()
    return EmulatorConfig(
        limits=Limits(**limits),
        target_base_url=backend,
        api_id=args.api_id,
        stage=args.stage,
        route_selection_expression=gateway.route_selection_expression,
        gateway_secret=env["DEMO_GATEWAY_SECRET"],
        gateway_secret_header=app_settings.gateway_secret_header,
        connection_id_header=app_settings.connection_id_header,
    )


def make_django_server(args: argparse.Namespace) -> Any:
    """uvicorn serving the project's ASGI app in this process, on this event loop.

    ``--ws none``: API Gateway talks plain HTTP to the backend, and the ``$connect`` POST
    carries the browser's ``Sec-WebSocket-*`` headers, which must not trigger an upgrade.
    uvicorn's own signal handling is switched off: this launcher decides the shutdown order.
    """
    import uvicorn
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.asgi import get_asgi_application

    class EmbeddedServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        def install_signal_handlers(self) -> None:  # uvicorn < 0.29
            pass

    config = uvicorn.Config(
        # Static files (the chat's script and stylesheet) served asynchronously, as runserver does.
        ASGIStaticFilesHandler(get_asgi_application()),
        host=args.host,
        port=args.port,
        ws="none",
        lifespan="off",
        access_log=False,
        log_level="info",
    )
    return EmbeddedServer(config)


async def serve(args: argparse.Namespace, config: Any) -> int:
    from aws_ws_async.emulator import GatewayEmulator

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises instead
            loop.add_signal_handler(signum, stop.set)
    django = make_django_server(args)
    django_task = asyncio.ensure_future(django.serve())
    emulator = GatewayEmulator(config)
    status = 0
    try:
        while not django.started:
            if django_task.done():
                print(f"Django could not start on {args.host}:{args.port}.", file=sys.stderr)
                return 1
            await asyncio.sleep(0.05)
        await emulator.start(args.host, args.gateway_port)
        url = f"http://{args.host}:{args.port}/"
        print(
            "\n"
            f"  Demo running: open {url}\n"
            f"  {args.login_hint}\n"
            f"  Rooms are channels: {url}?channel=random (open two windows to chat).\n"
            f"  WebSocket gateway: {emulator.url}   @connections: {emulator.management_url}\n"
            "  Press Ctrl-C to stop.\n",
            flush=True,
        )
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({stopping, django_task}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if django_task.done():
            print("Django stopped unexpectedly.", file=sys.stderr)
            status = 1
    finally:
        print("Stopping ...", flush=True)
        # The emulator first: closing the sockets posts their $disconnect to Django.
        await emulator.stop()
        django.should_exit = True
        await asyncio.wait({django_task}, timeout=15)
    return status


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name, port in (("--port", args.port), ("--gateway-port", args.gateway_port)):
        if not port_is_free(args.host, port):
            print(f"Port {port} on {args.host} is in use; choose another with {name}.")
            return 2
    env = demo_env(args, secrets.token_urlsafe(32))
    config = prepare_django(args, env)
    try:
        status = asyncio.run(serve(args, config))
    except KeyboardInterrupt:  # only where loop signal handlers are unsupported (Windows)
        status = 0
    print("Demo stopped.", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
