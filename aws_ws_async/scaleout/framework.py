"""Django's task framework, found lazily: ``django.tasks`` (Django 6.x) or ``django_tasks``.

The package imports no task engine at import time, so it works without the ``tasks`` extra;
only ``enqueue_message`` (and the worker) need one, and they get a clear
``ImproperlyConfigured`` instead of an ``ImportError`` or a broadcast nobody runs.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

#: Backends that never run a task: a broadcast enqueued there would wait forever.
NEVER_RUN = ("DummyBackend",)


def task_api() -> Any:
    """The task framework's module (``task``, ``task_backends``), built-in first."""
    for name in ("django.tasks", "django_tasks"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImproperlyConfigured(
        "enqueue_message needs Django's task framework: Django 6.x, or on Django 5.2 the "
        "django-tasks backport (pip install 'aws-ws-async[tasks]'), and a TASKS setting with a "
        "backend that runs tasks (e.g. django_tasks_db.DatabaseBackend and its db_worker)."
    )


def check_backend(alias: str = "default") -> None:
    """Refuse before anything is written when no task backend would ever run the broadcast."""
    api = task_api()
    if not settings.is_overridden("TASKS"):
        raise ImproperlyConfigured(
            "enqueue_message needs a task backend: set TASKS (e.g. {'default': {'BACKEND': "
            "'django_tasks_db.DatabaseBackend'}}) and run its worker; without one, use "
            "asend_message / send_message."
        )
    try:
        backend = api.task_backends[alias]
    except Exception as exc:  # the framework's InvalidTaskBackend(Error)
        raise ImproperlyConfigured(f"task backend {alias!r} cannot be loaded: {exc}") from exc
    if type(backend).__name__ in NEVER_RUN:
        raise ImproperlyConfigured(
            f"task backend {alias!r} is {type(backend).__name__}, which never runs tasks: "
            "an enqueued broadcast would never be sent"
        )
