"""Run one provisioning coroutine from sync code (admin actions, commands, model hooks).

Provisioning is a handful of calls per click, so a fresh loop per *operation* is fine; what must
never happen is a loop per item inside a loop, so callers that handle many gateways wrap the
whole batch in one coroutine (see the management commands).

TODO(integration): when ``aws_ws_async.sync`` (the long-lived loop "portal") lands, route through
it; until then asgiref's ``async_to_sync`` is used, which also works from a thread that
``sync_to_async`` started (it then runs on the caller's loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import async_to_sync

P = ParamSpec("P")
R = TypeVar("R")


def run_sync(func: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call an async provisioning function from sync code and return its result."""
    return async_to_sync(func)(*args, **kwargs)
