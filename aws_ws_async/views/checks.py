"""Deploy checks of routed ``WebSocketView`` subclasses (W004, W005), registered by ``checks``.

They live beside the views because they ask the views themselves: W005 reports exactly the
names ``get_allowed_handlers`` would let a message call, so the check cannot drift from the
request path's allow-list rule.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from typing import Any

from django.core.checks import CheckMessage, Warning, register

TAG = "aws_ws_async"


def _routed_view_classes() -> Iterator[tuple[str, type]]:
    """``(route, view_class)`` for every class-based view reachable from ROOT_URLCONF."""
    from django.urls import URLPattern, URLResolver, get_resolver

    try:
        patterns = list(get_resolver().url_patterns)
    except Exception:  # A broken URLconf is reported by Django's own url checks.
        return
    stack: list[tuple[str, Any]] = [("", p) for p in reversed(patterns)]
    seen: set[int] = set()
    while stack:
        prefix, entry = stack.pop()
        if isinstance(entry, URLResolver):
            if id(entry) in seen:
                continue
            seen.add(id(entry))
            try:
                children = list(entry.url_patterns)
            except Exception:  # noqa: S112 - reported by Django's url checks
                continue
            route = prefix + str(entry.pattern)
            stack.extend((route, child) for child in reversed(children))
        elif isinstance(entry, URLPattern):
            view_class = getattr(entry.callback, "view_class", None)
            if inspect.isclass(view_class):
                yield prefix + str(entry.pattern), view_class


def _websocket_views() -> Iterator[tuple[str, Any]]:
    """``(route, subclass)`` for every routed ``WebSocketView`` subclass."""
    from aws_ws_async.views.websocket import WebSocketView

    for route, view_class in _routed_view_classes():
        if issubclass(view_class, WebSocketView):
            yield route, view_class


def _exposed_methods(view_class: Any) -> list[str]:
    """Handlers a message could call that nobody listed: the view's own discovery decides.

    ``default`` is always callable, so it is not reported; ``ADDITIONAL_ALLOWED_HANDLERS``
    count as listed. A class whose options are too broken to discover reports nothing here
    (its first message fails loudly instead).
    """
    additional = getattr(view_class, "ADDITIONAL_ALLOWED_HANDLERS", None) or ()
    listed = set(additional) if isinstance(additional, list | tuple | set | frozenset) else set()
    try:
        callable_names = view_class.get_allowed_handlers()
    except Exception:
        return []
    # The built-in channel handlers (views/channels.py) are exposed on purpose.
    listed.update(getattr(view_class, "CHANNEL_HANDLERS", ()))
    return sorted(name for name in callable_names if name != "default" and name not in listed)


def _qualname(view_class: type) -> str:
    return f"{view_class.__module__}.{view_class.__qualname__}"


@register(TAG, deploy=True)
def check_routed_views(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W004 unlisted channels allowed; W005 handlers exposed without ``ALLOWED_HANDLERS``."""
    messages: list[CheckMessage] = []
    reported: set[type] = set()
    for route, view_class in _websocket_views():
        if view_class in reported:
            continue
        reported.add(view_class)
        name = _qualname(view_class)
        if getattr(view_class, "ALLOW_UNLISTED_CHANNELS", False) is True:
            messages.append(
                Warning(
                    f"{name} (route {route!r}) lets clients join channels that have no "
                    "ChannelPermission row.",
                    hint="Set ALLOW_UNLISTED_CHANNELS = False and add a ChannelPermission row "
                    "for every channel clients may join.",
                    obj=view_class,
                    id=f"{TAG}.W004",
                )
            )
        if not getattr(view_class, "ALLOWED_HANDLERS", None):
            exposed = _exposed_methods(view_class)
            if exposed:
                messages.append(
                    Warning(
                        f"{name} (route {route!r}) has no explicit ALLOWED_HANDLERS but defines "
                        f"public methods: {', '.join(exposed)}.",
                        hint="List the message handlers clients may call in ALLOWED_HANDLERS "
                        "(or prefix helper methods with '_') so no method is callable by accident.",
                        obj=view_class,
                        id=f"{TAG}.W005",
                    )
                )
    return messages
