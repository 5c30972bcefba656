"""Route selection: which route a message frame goes to, as API Gateway decides it.

Supported expressions: ``$request.body.<path>`` (e.g. ``$request.body.action``) and templates
such as ``${request.body.service}/${request.body.action}``. A frame that is not a JSON object,
or whose selected value is missing or null, selects no key and falls back to ``$default``.
Values are stringified as API Gateway does for arrays (``"[a, b]"``); numbers keep their JSON
spelling and booleans are ``true``/``false``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

DEFAULT_ROUTE = "$default"
_BODY_PREFIX = "request.body."
_TEMPLATE_RE = re.compile(r"\$\{([^}]*)\}")

_MISSING = object()


def _stringify(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_stringify(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_stringify(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _lookup(body: object, selector: str) -> object:
    """The value ``request.body.a.b`` points at in ``body``, or ``_MISSING``."""
    if not selector.startswith(_BODY_PREFIX):
        return _MISSING
    current = body
    for part in selector[len(_BODY_PREFIX) :].split("."):
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return _MISSING if current is None else current


def select_route_key(expression: str, frame: str | bytes) -> str | None:
    """The route key a frame selects, or ``None`` (no match: use ``$default``)."""
    try:
        body = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    expression = expression.strip()
    if "${" in expression:
        failed = False

        def substitute(match: re.Match[str]) -> str:
            nonlocal failed
            value = _lookup(body, match.group(1).strip())
            if value is _MISSING:
                failed = True
                return ""
            return _stringify(value)

        key = _TEMPLATE_RE.sub(substitute, expression)
        return None if failed else key
    if expression.startswith("$"):
        value = _lookup(body, expression[1:])
        return None if value is _MISSING else _stringify(value)
    return expression


def resolve_route(
    expression: str, frame: str | bytes, routes: Mapping[str, str]
) -> tuple[str, str | None]:
    """``(route_key, url)`` for a frame: a matching custom route, else ``($default, None)``."""
    key = select_route_key(expression, frame)
    if key is not None and key in routes:
        return key, routes[key]
    return DEFAULT_ROUTE, None
