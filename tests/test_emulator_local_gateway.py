"""``runwsgateway`` without ceremony: the local row, refusals that can never work, one log line
per event, and ``mint_websocket_token`` for scripts.

Before: ``runwsgateway --target ... --stage dev`` with no row started happily and then every
``$connect`` was refused (unknown_gateway); a project that configured logging on ``aws_ws_async``
saw each emulator line twice; a non-browser client had no way to get a token.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from aws_ws_async.management.commands.runwsgateway import Command
from aws_ws_async.models import ApiGateway
from tests.fixtures_views import API_ID, gateway_headers, new_connection_id, post

TARGET = "http://127.0.0.1:8000/ws/"


def build(*args: str) -> Any:
    command = Command(stdout=io.StringIO())
    parser = command.create_parser("manage.py", "runwsgateway")
    return command.build_config(vars(parser.parse_args(list(args))))


# --- the local row ------------------------------------------------------------------------


def test_create_gateway_creates_then_reuses_the_local_row(db: None) -> None:
    first = build("--create-gateway")
    row = ApiGateway.objects.get(api_id="localdev")
    assert (first.api_id, first.stage, first.target_base_url) == ("localdev", "local", TARGET)
    assert row.target_base_endpoint == TARGET
    assert row.websocket_url == "ws://127.0.0.1:8001/local"
    second = build("--create-gateway", "--stage", "dev", "--target", "http://127.0.0.1:9000/ws")
    assert ApiGateway.objects.filter(api_id="localdev").count() == 1
    row.refresh_from_db()
    assert (row.stage_name, row.target_base_endpoint) == ("dev", "http://127.0.0.1:9000/ws/")
    assert (second.stage, second.target_base_url) == ("dev", "http://127.0.0.1:9000/ws/")


def test_create_gateway_with_a_bad_api_id_is_a_command_error(db: None) -> None:
    with pytest.raises(CommandError, match="Cannot create the local gateway"):
        build("--create-gateway", "--api-id", "no spaces allowed")
    assert not ApiGateway.objects.exists()


# --- combinations that can never work -----------------------------------------------------


def test_target_without_a_row_in_front_of_a_view_that_needs_one_is_refused(db: None) -> None:
    with pytest.raises(CommandError) as info:
        build("--target", TARGET, "--stage", "dev")
    message = str(info.value)
    assert "tests.fixtures_views.EchoView" in message
    assert "unknown_gateway" in message
    assert "--create-gateway" in message


def test_target_without_a_row_is_fine_where_it_can_work(db: None) -> None:
    # Someone else's backend (not routed here), the explicit escape, a pinned view's own id.
    assert build("--target", "http://127.0.0.1:8000/elsewhere/").api_id == "emulator"
    assert build("--target", TARGET, "--allow-unknown-gateway").target_base_url == TARGET
    pinned = build("--target", "http://127.0.0.1:8000/ws-pinned/", "--api-id", "pinned0001")
    assert pinned.api_id == "pinned0001"
    with pytest.raises(CommandError, match="PinnedGatewayView"):
        build("--target", "http://127.0.0.1:8000/ws-pinned/", "--api-id", "other0001")


# --- one line per event -------------------------------------------------------------------


@pytest.fixture
def project_logging() -> Iterator[io.StringIO]:
    """A project's LOGGING: a console handler on ``aws_ws_async`` (as the demo configures)."""
    parent = logging.getLogger("aws_ws_async")
    emulator = logging.getLogger("aws_ws_async.emulator")
    saved = (parent.handlers[:], parent.level, emulator.handlers[:], emulator.level)
    # pytest's own capture handler sits on the root logger; a project's does not reach it here.
    parent.propagate = False
    buffer = io.StringIO()
    parent.handlers = [logging.StreamHandler(buffer)]
    parent.setLevel(logging.INFO)
    emulator.handlers = []
    emulator.setLevel(logging.NOTSET)
    yield buffer
    parent.handlers, level, emulator.handlers, emulator_level = saved
    parent.setLevel(level)
    parent.propagate = True
    emulator.setLevel(emulator_level)


def test_log_lines_print_once_when_the_project_configures_logging(
    project_logging: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    Command()._setup_logging(1)
    logging.getLogger("aws_ws_async.emulator").info("CONNECT abc= -> 200")
    printed = project_logging.getvalue().splitlines() + capsys.readouterr().err.splitlines()
    assert [line for line in printed if "CONNECT abc=" in line] == ["CONNECT abc= -> 200"]


def test_log_lines_still_print_when_only_a_null_handler_is_configured(
    project_logging: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.getLogger("aws_ws_async").handlers = [logging.NullHandler()]
    Command()._setup_logging(1)
    logging.getLogger("aws_ws_async.emulator").info("CONNECT abc= -> 200")
    assert "CONNECT abc= -> 200" in capsys.readouterr().err
    logging.getLogger("aws_ws_async.emulator").handlers = []


# --- mint_websocket_token -----------------------------------------------------------------


def mint(*args: str) -> str:
    out = io.StringIO()
    call_command("mint_websocket_token", *args, stdout=out)
    return out.getvalue()


def test_mint_is_refused_without_debug(user: Any, settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=True"):
        mint("--user", user.get_username())


def test_mint_refuses_unknown_and_inactive_users(user: Any, settings: Any) -> None:
    settings.DEBUG = True
    with pytest.raises(CommandError, match="No user 'nobody'"):
        mint("--user", "nobody")
    user.is_active = False
    user.save()
    with pytest.raises(CommandError, match="inactive"):
        mint("--user", user.get_username())


@pytest.mark.django_db(transaction=True)
async def test_minted_token_and_cookie_open_a_socket(
    user: Any, gateway: ApiGateway, settings: Any
) -> None:
    from asgiref.sync import sync_to_async

    settings.DEBUG = True
    await ApiGateway.objects.filter(pk=gateway.pk).aupdate(api_endpoint="ws://127.0.0.1:8001")
    printed = json.loads(await sync_to_async(mint)("--user", user.get_username(), "--json"))
    assert re.fullmatch(r"[0-9a-f]{64}", printed["token"])
    assert printed["url"] == f"ws://127.0.0.1:8001/test?ws_token={printed['token']}"
    headers = gateway_headers(new_connection_id(), connect=True, api_id=API_ID, secret=None)
    headers["Cookie"] = printed["cookie"]
    response = await post("/ws/connect", headers, query=f"ws_token={printed['token']}")
    assert response.status_code == 200, response.content
    again = await post(
        "/ws/connect",
        {**headers, "Connectionid": new_connection_id()},
        query=f"ws_token={printed['token']}",
    )
    assert again.status_code == 401  # one use only
