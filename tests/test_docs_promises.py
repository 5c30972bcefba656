"""Promises the documentation makes, held to the code and to the real views.

Each test quotes the page and section it checks. Tables of defaults, codes and ids are parsed
from ``docs/*.md`` itself, so a page and the code can't drift apart silently: the test fails
on whichever side changed. Behaviour is checked through Django's real ASGI handler (the
request path) or the admin through the test client, never by calling internals.

``KNOWN_STALE`` lists a documented value that is already known to be out of date (reported to
the lead). The test asserts it is *still* different, so once the page is fixed it fails until
the entry is removed: the exception can't outlive the bug.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import load_command_class
from django.db import connection
from django.http import HttpRequest
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import path, reverse

from aws_ws_async import conf
from aws_ws_async.admin import WebSocketSessionAdmin
from aws_ws_async.delivery import FailureReason
from aws_ws_async.emulator.cli import add_arguments, build_config
from aws_ws_async.models import ConnectionRateLimit, DisconnectReason, WebSocketSession
from aws_ws_async.views import WebSocketView, reasons
from tests.fixtures_delivery import make_gateway, make_sessions
from tests.fixtures_views import (
    Browser,
    connect,
    gateway_headers,
    new_connection_id,
    post,
    reset_asgi_app,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HEADER = reasons.REASON_HEADER.lower()

#: (page, key) -> the documented text known to be stale; see the module docstring.
KNOWN_STALE: dict[tuple[str, str], str] = {}


def section(page: str, heading: str) -> str:
    """The text of ``page`` from the heading ``heading`` to the next heading of that level."""
    text = (DOCS / page).read_text()
    level = heading.split(" ", 1)[0]
    start = text.index(f"\n{heading}\n")
    rest = text[start + len(heading) + 2 :]
    end = re.search(rf"^{level} ", rest, re.M)
    return rest[: end.start()] if end else rest


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``text``, as stripped cells."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    return [row for row in cells[2:] if row]  # skip the header and the --- line


def literal(cell: str) -> Any:
    """A documented default as a Python value (``10,000`` -> 10000, ```set()``` -> set())."""
    text = cell.strip().strip("`").strip()
    if text == "set()":
        return set()
    if re.fullmatch(r"\d{1,3}(,\d{3})+", text):
        return int(text.replace(",", ""))
    return ast.literal_eval(text)


def same(documented: Any, actual: Any) -> bool:
    """Equal up to the container type the docs can't show (set/frozenset, list/tuple)."""
    if isinstance(documented, set | frozenset) and isinstance(actual, set | frozenset):
        return set(documented) == set(actual)
    if isinstance(documented, list | tuple) and isinstance(actual, list | tuple):
        return list(documented) == list(actual)
    return bool(documented == actual)


def pairs(row: list[str]) -> list[tuple[str, str]]:
    """``| `a` / `b` | `1` / `2` |`` -> [("a", "1"), ("b", "2")]."""
    names = re.findall(r"`([^`]+)`", row[0])
    values = [v.strip() for v in row[1].split(" / ")] if len(names) > 1 else [row[1]]
    assert len(names) == len(values), row
    return list(zip(names, values, strict=True))


def check_defaults(page: str, documented: dict[str, str], actual: dict[str, Any]) -> None:
    wrong = {}
    for key, text in documented.items():
        stale = KNOWN_STALE.get((page, key))
        try:
            ok = same(literal(text), actual[key])
        except (ValueError, SyntaxError):
            wrong[key] = (text, "not a Python literal: check it by hand (PROSE_DEFAULTS)")
            continue
        if stale is not None:
            fixed = f"{page} {key}: fixed? remove it from KNOWN_STALE"
            assert text.strip("`") == stale, fixed
            assert not ok, fixed
        elif not ok:
            wrong[key] = (text, actual[key])
    assert wrong == {}, f"{page}: documented default != code (doc, code): {wrong}"


# --- tables of defaults -----------------------------------------------------------------


#: Cells of views.md's Options table that are prose, not a value (checked separately).
PROSE_DEFAULTS = {"required_headers", "required_connection_headers", "model"}


def test_view_options_table_gives_the_class_defaults() -> None:
    """views.md, "Options": every attribute's documented default is the class's."""
    rows = table_rows(section("views.md", "## Options"))
    documented = dict(pair for row in rows for pair in pairs(row))
    assert len(documented) >= 25, documented  # the table was found and parsed
    prose = {key: documented.pop(key) for key in PROSE_DEFAULTS}
    check_defaults("views.md", documented, {k: getattr(WebSocketView, k) for k in documented})
    required = re.findall(r"`([^`]+)`", prose["required_headers"])
    assert required == list(WebSocketView.required_headers)
    handshake = re.findall(r"`([^`]+)`", prose["required_connection_headers"])
    assert handshake == list(WebSocketView.required_connection_headers)
    assert prose["model"] == "`WebSocketSession`"
    assert WebSocketView.model is WebSocketSession


@pytest.mark.parametrize(
    ("page", "heading"), [("broadcasting.md", "## Tuning"), ("scaling.md", "## Settings")]
)
def test_tuning_tables_give_the_settings_defaults(page: str, heading: str) -> None:
    """broadcasting.md "Tuning" and scaling.md "Settings" repeat defaults of settings.md's
    generated table; they must agree with ``conf.SPECS`` (where the generated table comes from).
    """
    documented = {
        key: value
        for row in table_rows(section(page, heading))
        for key, value in pairs(row)
        if value != "AWS"  # management_endpoint_url: "AWS" means "the AWS endpoint", not a value
    }
    assert len(documented) >= 7, documented
    check_defaults(page, documented, {key: conf.SPECS[key].default for key in documented})


def test_admin_deadline_default_is_twenty_seconds() -> None:
    """admin.md, "Deadlines": ``operation_timeout_seconds`` on the session admin (20 s)."""
    assert "(20 s by default)" in section("admin.md", "## Deadlines")
    assert WebSocketSessionAdmin.operation_timeout_seconds == 20.0


# --- lists of codes and ids -------------------------------------------------------------


def reason_table() -> dict[str, int]:
    rows = table_rows(section("views.md", "## Why was I refused? Reason codes"))
    return {row[0].strip("`"): int(row[1]) for row in rows}


def test_reason_table_lists_exactly_the_codes() -> None:
    """views.md, "Why was I refused?": the table lists every code and no code that is gone."""
    assert set(reason_table()) == reasons.ALL_REASONS


def test_checks_page_documents_exactly_the_registered_ids() -> None:
    """checks.md: every id a check can report is described, and every described id exists."""
    source = "\n".join(p.read_text() for p in (ROOT / "aws_ws_async").rglob("*.py"))
    registered = set(re.findall(r'id=f?"\{TAG\}\.([EWI]\d{3})"', source))
    registered |= set(re.findall(r'id="aws_ws_async\.([EWI]\d{3})"', source))
    page = (DOCS / "checks.md").read_text()
    documented = set(re.findall(r"^`aws_ws_async\.([EWI]\d{3})`", page, re.M))
    assert len(registered) >= 13, registered  # the pattern still finds the checks
    assert registered == documented


def test_failure_and_disconnect_reasons_are_the_documented_ones() -> None:
    """broadcasting.md, "Sending": the ``FailureReason`` values and the ``DisconnectReason``
    choices written on rows, as listed in the paragraph."""
    text = section("broadcasting.md", "## Sending")
    failures = text.split("`Failure.reason` is one of", 1)[1].split("Disconnect reasons", 1)[0]
    written = text.split("`DisconnectReason` choices (", 1)[1].split(")", 1)[0]
    code = r"`([a-z_]+)`"
    documented_failures = set(re.findall(code, failures)) - {"detail"}
    assert documented_failures == {r.value for r in FailureReason}
    assert set(re.findall(code, written)) == set(DisconnectReason.values)


# --- commands and their flags ----------------------------------------------------------

COMMANDS = sorted(
    p.stem
    for p in (ROOT / "aws_ws_async" / "management" / "commands").glob("*.py")
    if not p.stem.startswith("_")
)
_COMMAND = re.compile(
    r"(?<![\w-])(" + "|".join(sorted(COMMANDS, key=len, reverse=True)) + r")(?![\w-])"
)
#: A long option: ``--dry-run`` but not the arrow of ``client --ws--> gateway``.
_FLAG = re.compile(r"(?<![\w-])--[a-z](?:[a-z-]*[a-z])?(?![\w>-])")


def documented_flags(command_re: re.Pattern[str] = _COMMAND) -> dict[tuple[str, str], set[str]]:
    """(command, --flag) -> pages, for every flag the docs give a command ``command_re`` names.

    A flag belongs to the command named before it on the same line; in a paragraph or bullet
    that names exactly one command, to that command on every line.
    """
    found: dict[tuple[str, str], set[str]] = {}
    for page in [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]:
        for block in re.split(r"\n\s*\n|\n(?=- )|\n(?=\| )", page.read_text()):
            named = set(command_re.findall(block))
            for line in block.splitlines():
                hits = list(command_re.finditer(line))
                if hits:
                    ends = [h.start() for h in hits[1:]] + [len(line)]
                    spans = [
                        (h.group(1), line[h.end() : e]) for h, e in zip(hits, ends, strict=True)
                    ]
                elif len(named) == 1:
                    spans = [(next(iter(named)), line)]
                else:
                    continue
                for command, text in spans:
                    for flag in _FLAG.findall(text):
                        found.setdefault((command, flag), set()).add(page.name)
    return found


def options_of(command: str) -> set[str]:
    parser = load_command_class("aws_ws_async", command).create_parser("manage.py", command)
    return set(parser._option_string_actions)


def test_every_documented_command_flag_exists() -> None:
    """Every ``manage.py <command> --flag`` in the docs and README is an option the command
    accepts (the camelCase aliases included: "same commands, same options")."""
    found = documented_flags()
    assert len(found) >= 30, found  # the docs were read and flags attributed
    unknown = {
        key: sorted(pages) for key, pages in found.items() if key[1] not in options_of(key[0])
    }
    assert unknown == {}


def test_every_documented_benchmark_flag_exists() -> None:
    """Every ``python -m benchmarks.<name> --flag`` in the docs and README is in that
    benchmark's ``--help`` (the commands the README promises to work)."""
    found = documented_flags(re.compile(r"python -m (benchmarks\.[a-z_]+)"))
    assert len(found) >= 8, found
    unknown = {}
    for module in sorted({module for module, _ in found}):
        usage = subprocess.run(
            [sys.executable, "-m", module, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        known = set(_FLAG.findall(usage))
        unknown |= {
            key: sorted(pages)
            for key, pages in found.items()
            if key[0] == module and key[1] not in known
        }
    assert unknown == {}


def emulator_flag_table() -> dict[str, str]:
    """emulator.md's runwsgateway flag table: flag -> its default cell, split per flag."""
    rows = table_rows(section("emulator.md", "## Running it next to your project"))
    table: dict[str, str] = {}
    for row in rows:
        flags = re.findall(r"`(--[a-z-]+)", row[0])
        defaults = [d.strip() for d in row[1].split(",")]
        for i, flag in enumerate(flags):
            table[flag] = defaults[i] if len(defaults) == len(flags) else row[1]
    return table


def test_emulator_flag_table_names_real_flags_with_their_defaults() -> None:
    """emulator.md, "Running it next to your project": every flag in the table is a flag of
    ``runwsgateway`` and (but for the Django-only ones) of ``python -m aws_ws_async.emulator``
    ("The same flags work without a Django project"); the numeric defaults are the ones a run
    without the flag gets."""
    table = emulator_flag_table()
    assert len(table) >= 20, table
    assert set(table) - options_of("runwsgateway") == set()
    usage = subprocess.run(
        [sys.executable, "-m", "aws_ws_async.emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    django_only = {"--pk", "--create-gateway", "--allow-unknown-gateway"}
    assert {flag for flag in set(table) - django_only if f"[{flag}" not in usage} == set()

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = vars(parser.parse_args(["--target", "http://127.0.0.1:8000/ws/"]))
    config = build_config(options)
    actual = {
        "--host": options["host"],
        "--port": options["port"],
        "--idle-timeout": config.limits.idle_timeout,
        "--max-age": config.limits.max_connection_age,
        "--integration-timeout": config.limits.integration_timeout,
        "--max-in-flight": config.limits.max_in_flight_per_connection,
        "--max-queued": config.limits.max_queued_per_connection,
        "--shutdown-grace": config.shutdown_grace,
    }
    documented = {flag: table[flag].removesuffix(" s").strip("`") for flag in actual}
    assert documented["--host"] == actual.pop("--host")
    assert {flag: float(documented[flag]) for flag in actual} == actual


# --- the request path -------------------------------------------------------------------


def _bad_method(b: Browser) -> Any:
    return post("/ws/connect", gateway_headers(new_connection_id(), connect=True), method="GET")


def _missing_gateway_header(b: Browser) -> Any:
    headers = gateway_headers(new_connection_id(), connect=True)
    del headers["X-Forwarded-Port"]
    return post("/ws/connect", headers)


def _oversize(b: Browser) -> Any:
    return post("/ws/connect", gateway_headers(new_connection_id(), connect=True), b"x" * 200_000)


#: name -> (request, expected reason code, a ConnectionRateLimit row written?). security.md,
#: "Rate limits": "Every $connect attempt that reaches the view is recorded ... successes and
#: refusals alike"; "Requests refused *before* the view trusts them (wrong method, wrong gateway
#: secret, missing gateway headers, oversize body) are not recorded". views.md, "$connect":
#: the handshake-header check is after trust ("each refusal is counted by the rate limit").
REFUSALS: dict[str, tuple[Any, str, bool]] = {
    "method": (_bad_method, reasons.METHOD_NOT_ALLOWED, False),
    "secret": (
        lambda b: connect(b, new_connection_id(), secret="wrong-" + "s" * 40),
        reasons.INVALID_SECRET,
        False,
    ),
    "gateway_header": (_missing_gateway_header, reasons.MISSING_HEADER, False),
    "oversize": (_oversize, reasons.PAYLOAD_TOO_LARGE, False),
    "handshake_header": (
        lambda b: connect(b, new_connection_id(), origin=None),
        reasons.MISSING_HEADER,
        True,
    ),
    "connection_id": (lambda b: connect(b, "bad id!"), reasons.CONNECTION_ID, True),
    "origin": (
        lambda b: connect(b, new_connection_id(), origin="https://evil.test"),
        reasons.ORIGIN,
        True,
    ),
    "gateway": (
        lambda b: connect(b, new_connection_id(), api_id="unknown000"),
        reasons.UNKNOWN_GATEWAY,
        True,
    ),
    "channel": (
        lambda b: connect(b, new_connection_id(), channel="bad%0Aroom"),
        reasons.INVALID_CHANNEL,
        True,
    ),
    "token": (
        lambda b: connect(b, new_connection_id(), token="0" * 64),
        reasons.INVALID_TOKEN,
        True,
    ),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", sorted(REFUSALS))
async def test_connect_refusal_status_code_and_recording_follow_the_docs(
    ws_settings: Any, gateway: Any, browser: Browser, name: str
) -> None:
    """The status is the one views.md's reason table gives the code; the attempt is recorded
    (with the code in ``ConnectionRateLimit.reason``) exactly when security.md says so; no
    session is created and no token is spent ("No refusal spends the token")."""
    request, code, recorded = REFUSALS[name]
    ws_settings.DEBUG = True  # the reason header names the code
    response = await request(browser)
    assert response.headers[HEADER].split(":", 1)[0] == code, response.headers
    assert response.status_code == reason_table()[code]
    attempts = [a async for a in ConnectionRateLimit.objects.all()]
    if recorded:
        assert [(a.successful, a.reason) for a in attempts] == [(False, code)]
    else:
        assert attempts == []
    assert await WebSocketSession.objects.acount() == 0
    from aws_ws_async.models import WebSocketToken

    assert not await WebSocketToken.objects.filter(used=True).aexists()


@pytest.mark.django_db(transaction=True)
async def test_the_views_own_host_refusal_says_invalid_host_header(
    ws_settings: Any, gateway: Any, browser: Browser
) -> None:
    """security.md, "Host": "The 400 says "Invalid Host header" and never lists
    ``ALLOWED_HOSTS``" (the view's own check: without CommonMiddleware, which refuses first)."""
    ws_settings.MIDDLEWARE = [
        m for m in ws_settings.MIDDLEWARE if m != "django.middleware.common.CommonMiddleware"
    ]
    ws_settings.ALLOWED_HOSTS = ["internal-name.corp.example"]
    reset_asgi_app()
    try:
        response = await connect(browser, new_connection_id(), host="evil.test")
    finally:
        reset_asgi_app()
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_host", "message": "Invalid Host header"}


class ReturnsView(WebSocketView):
    """Handlers returning each kind of value views.md says a handler may return."""

    ALLOWED_HANDLERS = {"as_list", "as_dict", "as_nothing"}

    async def as_list(self, request: HttpRequest, *args: Any, **kwargs: Any) -> list[Any]:
        return [1, "two", None]

    def as_dict(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"sync": True}

    async def as_nothing(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        return None


#: This module is the URLconf of the test below (``@pytest.mark.urls``).
urlpatterns = [path("ws/<slug:route>", ReturnsView.as_view())]


@pytest.mark.urls("tests.test_docs_promises")
@pytest.mark.django_db(transaction=True)
async def test_handler_return_values_become_the_documented_responses(
    ws_settings: Any, gateway: Any, browser: Browser
) -> None:
    """views.md, "Writing a view": "A handler may return an ``HttpResponse``, a
    JSON-serialisable ``dict``/``list`` (sent as JSON), or nothing (200 ``{}``)"."""
    cid = new_connection_id()
    assert (await connect(browser, cid)).status_code == 200
    answers = {}
    for action in ("as_list", "as_dict", "as_nothing"):
        response = await post("/ws/default", gateway_headers(cid), f'{{"action": "{action}"}}')
        assert response.status_code == 200, response.content
        assert response.headers["content-type"].startswith("application/json")
        answers[action] = response.json()
    assert answers == {"as_list": [1, "two", None], "as_dict": {"sync": True}, "as_nothing": {}}


# --- the admin --------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_channel_table_shows_the_fifty_busiest_busiest_first(admin_client: Client) -> None:
    """admin.md, "Connected counts": "the 50 busiest channels, busiest first", in one
    aggregate query whatever the number of channels."""
    gw = make_gateway("Docs API", "docs000001")
    # Channel c<i> has i + 1 connected subscribers: 60 channels, so the 10 quietest are cut.
    for i in range(60):
        make_sessions(gw, i + 1, channel=f"c{i}", prefix=f"s{i}-")
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse("admin:aws_ws_async_websocketsession_changelist"))
    assert response.status_code == 200
    shown = [
        (row["name"], row["count"]) for row in response.context["connection_counts"]["channels"]
    ]
    assert shown == [(f"c{i}", i + 1) for i in range(59, 9, -1)]
    per_channel = [q["sql"] for q in captured.captured_queries if "channel_name" in q["sql"]]
    assert sum("GROUP BY" in q for q in per_channel) == 1
