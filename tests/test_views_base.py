"""``views/base.py`` is the bottom of the views: it never imports a subclass module.

Handler discovery needs the framework class (``WebSocketView``) to know which methods are
never handlers; the base used to import it lazily, an arrow up inside its own package. The
boundary is now found through the MRO (``_handler_boundary``).
"""

from __future__ import annotations

import ast
from pathlib import Path

from aws_ws_async.views import WebSocketView
from aws_ws_async.views.base import WebSocketViewBase
from tests.fixtures_views import EchoView, ExplicitView

BASE = Path(__file__).resolve().parent.parent / "aws_ws_async" / "views" / "base.py"
SUBCLASS_MODULES = {
    "aws_ws_async.views",
    "aws_ws_async.views.websocket",
    "aws_ws_async.views.connect",
    "aws_ws_async.views.messages",
    "aws_ws_async.views.access",
    "aws_ws_async.views.token",
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_base_imports_no_subclass_module() -> None:
    assert not imported_modules(BASE) & SUBCLASS_MODULES


def test_handler_boundary_is_websocketview() -> None:
    assert EchoView.handler_boundary() is WebSocketView
    assert WebSocketView.handler_boundary() is WebSocketView
    assert WebSocketViewBase.handler_boundary() is WebSocketViewBase


def test_framework_methods_stay_uncallable() -> None:
    allowed = EchoView.get_allowed_handlers()
    assert {"echo", "sync_echo", "whoami", "change_channel", "default"} <= allowed
    assert not allowed & {"connect", "dispatch", "post", "disconnect", "after_connect", "message"}
    assert ExplicitView.get_allowed_handlers() == frozenset({"echo"})
