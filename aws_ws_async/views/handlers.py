"""Which methods of a ``WebSocketView`` subclass a message may call.

A message names its handler in the body, so the set of callable names is an allow-list: public
plain methods (``def`` or ``async def``) defined on the subclass, plus names listed explicitly.
Everything ``WebSocketView`` itself defines (``connect``, ``dispatch``, hooks, responses) is never
callable, except ``default`` and ``change_channel`` which exist to be exposed. Static methods,
class methods and properties are not handlers, even when listed in ``ALLOWED_HANDLERS``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

#: Base-class methods a subclass may expose as handlers.
EXPOSABLE_BASE_HANDLERS = frozenset({"default", "change_channel"})


def _reserved(base: type, exposable: frozenset[str]) -> set[str]:
    allowed = EXPOSABLE_BASE_HANDLERS & exposable
    return {name for name in dir(base) if name not in allowed}


def discover_handlers(
    cls: type,
    base: type,
    extra: set[str] | frozenset[str],
    exposable: frozenset[str] = EXPOSABLE_BASE_HANDLERS,
) -> frozenset[str]:
    """Public functions defined on ``cls`` and its ``base`` subclasses in between, plus ``extra``.

    ``base`` (``WebSocketView``) and everything it inherits are excluded, as are mixins that are
    not ``base`` subclasses: a helper mixin's public methods must not become remote calls.
    """
    reserved = _reserved(base, exposable)
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is base or not issubclass(klass, base):
            continue
        for name, attr in vars(klass).items():
            if name.startswith("_") or name in reserved:
                continue
            if inspect.isfunction(attr):
                names.add(name)
    names.update(name for name in extra if _exposable(name, reserved))
    return frozenset(names)


def explicit_handlers(
    names: set[str] | frozenset[str],
    base: type,
    exposable: frozenset[str] = EXPOSABLE_BASE_HANDLERS,
) -> frozenset[str]:
    """An explicit ``ALLOWED_HANDLERS`` list, minus names that are never callable.

    ``exposable`` (the view's ``BASE_HANDLERS``) can only narrow the base methods that may be
    exposed, never add hooks such as ``connect`` to them.
    """
    reserved = _reserved(base, exposable)
    return frozenset(name for name in names if _exposable(name, reserved))


def is_plain_method(cls: type, name: str) -> bool:
    """Whether ``name`` is a ``def``/``async def`` on ``cls`` (looked up without descriptors)."""
    try:
        attr = inspect.getattr_static(cls, name)
    except AttributeError:
        return False
    return inspect.isfunction(attr)


def bound_handler(view: object, name: str) -> Callable[..., Any] | None:
    """``view``'s method ``name`` if it is a plain function on its class, else None.

    Checked on the class without running descriptors, so a name listed in ``ALLOWED_HANDLERS``
    that is a static or class method, a property (whose getter would run) or any other class
    attribute is refused like an unknown name, whatever the allow-list says.
    """
    if not is_plain_method(type(view), name):
        return None
    method = getattr(view, name, None)
    return method if callable(method) else None


def _exposable(name: Any, reserved: set[str]) -> bool:
    return (
        isinstance(name, str) and bool(name) and not name.startswith("_") and name not in reserved
    )
