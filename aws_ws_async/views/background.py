"""Fire-and-forget work started by a request (welcome messages, server-side closes).

asyncio keeps only weak references to tasks, so a task nobody holds can be garbage-collected
mid-flight; the set below holds a strong reference until each task finishes. Failures are
logged, never raised into the request that started them (it has already been answered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger("aws_ws_async.views")

_tasks: set[asyncio.Task[Any]] = set()


def _finished(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        logger.error(
            "background task %s failed", task.get_name(), exc_info=(type(error), error, None)
        )


def spawn(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Run ``coro`` on the current event loop without awaiting it."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _tasks.add(task)
    task.add_done_callback(_finished)
    return task


def pending_tasks() -> set[asyncio.Task[Any]]:
    """The tasks still running (tests await them; servers let them finish)."""
    return {task for task in _tasks if not task.done()}


async def wait_for_background_tasks() -> None:
    """Wait until every background task of this loop is done (for tests and shutdown)."""
    loop = asyncio.get_running_loop()
    tasks = [t for t in pending_tasks() if t.get_loop() is loop]
    if tasks:
        await asyncio.wait(tasks)
