"""Run one provisioning coroutine from sync code (admin actions, commands, model hooks).

Everything goes through :mod:`aws_ws_async.sync`'s long-lived portal loop, the project's one
async-to-sync bridge. The portal runs ORM queries on its own connections, which cannot see the
caller's uncommitted rows and would wait on the caller's row locks; and provisioning must not
call AWS inside a transaction anyway (a rollback would forget what AWS created). So calling a
sync twin inside ``transaction.atomic()`` is refused with a clear error: run it after commit
(``transaction.on_commit``) or outside the block.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from django.db import transaction

from aws_ws_async import sync
from aws_ws_async.exceptions import ApiGatewaySyncError

P = ParamSpec("P")
R = TypeVar("R")


class CalledInsideTransaction(ApiGatewaySyncError):
    """A provisioning sync twin was called inside ``transaction.atomic()``."""


def in_transaction() -> bool:
    return bool(transaction.get_connection().in_atomic_block)


def run_sync(func: Callable[P, Awaitable[R]], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call an async provisioning function from sync code and return its result."""
    if in_transaction():
        raise CalledInsideTransaction(
            f"{getattr(func, '__name__', 'provisioning')}() calls AWS and must run after the "
            "database transaction commits: call it outside transaction.atomic() or from "
            "transaction.on_commit()."
        )
    return sync.run(lambda: func(*args, **kwargs))
