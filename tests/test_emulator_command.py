"""``manage.py runwsgateway``: configuration from a row or flags, and a clean Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError

from aws_ws_async.management.commands.runwsgateway import Command
from aws_ws_async.models import ApiGateway, ApiGatewayAdditionalRoute

ROOT = Path(__file__).resolve().parent.parent
SECRET = "k" * 40


def build(*args: str) -> Any:
    command = Command()
    parser = command.create_parser("manage.py", "runwsgateway")
    options = vars(parser.parse_args(list(args)))
    return command.build_config(options)


@pytest.fixture
def row(db: None) -> ApiGateway:
    gateway = ApiGateway.objects.create(
        api_name="Demo",
        api_id="demolocal",
        stage_name="local",
        target_base_endpoint="http://127.0.0.1:8000/ws/",
        route_selection_expression="$request.body.kind",
        enable_route_responses=True,
    )
    ApiGatewayAdditionalRoute.objects.create(
        api_gateway=gateway,
        name="send",
        route_key="sendmessage",
        integration_url="http://127.0.0.1:8000/ws/sendmessage",
    )
    return gateway


def test_config_from_a_row_and_settings(row: ApiGateway, settings: Any) -> None:
    settings.AWS_WS_ASYNC = {
        **settings.AWS_WS_ASYNC,
        "gateway_secret": [SECRET, "z" * 40],
        "connection_id_header": "X-Conn",
    }
    for selector in (("--pk", str(row.pk)), ("--api-id", "demolocal")):
        config = build(*selector)
        assert config.api_id == "demolocal"
        assert config.stage == "local"
        assert config.target_base_url == "http://127.0.0.1:8000/ws/"
        assert config.route_selection_expression == "$request.body.kind"
        assert dict(config.additional_routes) == {
            "sendmessage": "http://127.0.0.1:8000/ws/sendmessage"
        }
        assert config.route_responses is True
        assert config.gateway_secret == SECRET  # the first one, as provisioning sends
        assert config.gateway_secret_header == "X-Ws-Gateway-Secret"
        assert config.connection_id_header == "X-Conn"


def test_flags_override_the_row(row: ApiGateway) -> None:
    config = build(
        "--pk",
        str(row.pk),
        "--stage",
        "other",
        "--target",
        "http://127.0.0.1:9000/api/ws",
        "--route",
        "extra=http://127.0.0.1:9000/x",
        "--secret",
        SECRET,
        "--idle-timeout",
        "5",
        "--throttle-rate",
        "0.25",
        "--latency",
        "0.1",
        "--seed",
        "3",
    )
    assert config.stage == "other"
    assert config.target_base_url == "http://127.0.0.1:9000/api/ws/"
    assert set(config.additional_routes) == {"sendmessage", "extra"}
    assert config.gateway_secret == SECRET
    assert config.limits.idle_timeout == 5
    faults = config.faults
    assert (faults.throttle_rate, faults.latency, faults.seed) == (0.25, 0.1, 3)


def test_flags_only(db: None) -> None:
    # This project's /ws/ view needs a row for the api id: the escape says the target is not it.
    target = ("--target", "http://127.0.0.1:8000/ws/", "--allow-unknown-gateway")
    config = build(*target, "--api-id", "flagsonly")
    assert (config.api_id, config.stage) == ("flagsonly", "local")
    assert build(*target).api_id == "emulator"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "No backend URL"),
        (("--pk", "999"), "No ApiGateway with pk=999"),
        (("--api-id", "missing"), "No ApiGateway with api_id='missing'"),
        (("--target", "ftp://nope/"), "target_base_url"),
        (("--target", "http://127.0.0.1/ws/", "--throttle-rate", "2"), "throttle_rate"),
        (("--target", "http://127.0.0.1/ws/", "--stage", "a b"), "stage"),
    ],
)
def test_unusable_configuration_is_a_command_error(
    db: None, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        build(*args)


def test_row_without_api_id_is_refused(db: None) -> None:
    gateway = ApiGateway.objects.create(
        api_name="Unprovisioned", target_base_endpoint="http://127.0.0.1:8000/ws/"
    )
    with pytest.raises(CommandError, match="has no api_id"):
        build("--pk", str(gateway.pk))


def test_bad_route_flag_is_rejected_by_the_parser() -> None:
    with pytest.raises(CommandError, match="--route: expected KEY=URL"):
        build("--target", "http://127.0.0.1/ws/", "--route", "no-equals-sign")


@pytest.mark.e2e
def test_command_serves_and_stops_cleanly_on_ctrl_c() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django",
            "runwsgateway",
            "--target",
            "http://127.0.0.1:9/ws/",
            "--allow-unknown-gateway",
            "--port",
            "0",
            "--stage",
            "cli",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Quit with CTRL-C" in line:
                break
        output = "".join(lines)
        match = re.search(r"@connections API at\s+(http://127\.0\.0\.1:\d+/cli)", output)
        assert match, output
        request = urllib.request.Request(
            f"{match.group(1)}/@connections/abc%3D",
            headers={
                "Authorization": "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=00"
            },
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code == 410
        info.value.close()
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    assert "Emulator stopped." in rest
    assert "Traceback" not in errors


def test_plain_cli_builds_a_config_without_django() -> None:
    import argparse

    from aws_ws_async.emulator import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    options = vars(
        parser.parse_args(
            [
                "--target",
                "http://127.0.0.1:9000/ws",
                "--route",
                "chat=http://127.0.0.1:9000/chat",
                "--secret-header",
                "X-Secret",
                "--max-age",
                "60",
                "--disconnect-loss-rate",
                "0.5",
                "--max-in-flight",
                "3",
                "--max-queued",
                "7",
                "--shutdown-grace",
                "1.5",
            ]
        )
    )
    config = cli.build_config(options)
    assert config.target_base_url == "http://127.0.0.1:9000/ws/"
    assert (config.api_id, config.stage) == ("emulator", "local")
    assert dict(config.additional_routes) == {"chat": "http://127.0.0.1:9000/chat"}
    assert config.gateway_secret_header == "X-Secret"
    assert config.limits.max_connection_age == 60
    assert config.limits.idle_timeout == 600  # untouched defaults stay API Gateway's
    assert config.faults.disconnect_loss_rate == 0.5
    assert config.limits.max_in_flight_per_connection == 3
    assert config.limits.max_queued_per_connection == 7
    assert config.shutdown_grace == 1.5
    assert cli.build_config(vars(parser.parse_args(["--target", "http://x/"]))).shutdown_grace == 5
    with pytest.raises(ValueError, match="no backend URL"):
        cli.build_config(vars(parser.parse_args([])))
    with pytest.raises(SystemExit):
        parser.parse_args(["--route", "missing-url"])


@pytest.mark.e2e
def test_python_m_emulator_runs_without_a_django_project() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "aws_ws_async.emulator", "--target", "http://127.0.0.1:9/ws/"]
    process = subprocess.Popen(
        [*command, "--port", "0", "--api-id", "plaincli"],
        cwd="/",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "api 'plaincli', stage 'local'" in first, first + (process.stderr.read() or "")
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    assert "Emulator stopped." in rest


def test_the_emulator_never_imports_django() -> None:
    """DESIGN: the emulator is a face that knows no Django (the command does the translating)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "import sys, aws_ws_async.emulator, aws_ws_async.emulator.cli, "
        "aws_ws_async.emulator.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


async def _serve_then_sigterm(command: list[str], env: dict[str, str], backend: Any) -> None:
    """Start ``command`` (an emulator in front of ``backend``), open one socket, SIGTERM it.

    The client must see 1001, the backend that socket's ``$disconnect``, and the process must
    exit 0 within a deadline, as after Ctrl-C.
    """
    import asyncio

    import aiohttp

    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        banner = ""
        async with asyncio.timeout(30):
            while "Quit with CTRL-C" not in banner:
                line = await process.stdout.readline()
                if not line:
                    break
                banner += line.decode()
        match = re.search(r"clients connect to\s+(ws://127\.0\.0\.1:\d+/\w+)", banner)
        assert match, banner
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(match.group(1), autoclose=False)
            [connect] = backend.by_path("/connect")
            process.send_signal(signal.SIGTERM)
            message = await asyncio.wait_for(ws.receive(), 10)
            assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1001)
            rest, errors = await asyncio.wait_for(process.communicate(), 15)
        assert process.returncode == 0, errors.decode()
        [disconnect] = backend.by_path("/disconnect")
        assert disconnect.headers["Connectionid"] == connect.headers["Connectionid"]
        assert "Emulator stopped." in rest.decode()
        assert "Traceback" not in errors.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.e2e
async def test_runwsgateway_on_sigterm_posts_disconnects_and_exits_0(
    recording_backend: Any,
) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "django", "runwsgateway", "--port", "0"]
    await _serve_then_sigterm(
        [*command, "--target", recording_backend.url, "--allow-unknown-gateway", "--stage", "cli"],
        env,
        recording_backend,
    )


@pytest.mark.e2e
async def test_python_m_emulator_on_sigterm_posts_disconnects_and_exits_0(
    recording_backend: Any,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "aws_ws_async.emulator", "--port", "0"]
    await _serve_then_sigterm([*command, "--target", recording_backend.url], env, recording_backend)
