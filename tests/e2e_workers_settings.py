"""The e2e project plus a task backend: django-tasks-db (its queue in the project's database).

Used by tests/test_e2e_workers.py for the ``db_worker`` processes and the shells that enqueue
and wait. Shard size, checkpoint interval, lease and the rate budget come from ``E2E_*``
variables.
"""

from __future__ import annotations

import os

from tests.e2e_project.settings import *  # noqa: F403
from tests.e2e_project.settings import AWS_WS_ASYNC, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
AWS_WS_ASYNC = {
    **AWS_WS_ASYNC,
    "broadcast_shard_size": int(os.environ.get("E2E_SHARD_SIZE", "500")),
    "broadcast_checkpoint_every": int(os.environ.get("E2E_CHECKPOINT_EVERY", "100")),
    "broadcast_lease_seconds": float(os.environ.get("E2E_LEASE_SECONDS", "3")),
    "max_concurrency": int(os.environ.get("E2E_MAX_CONCURRENCY", "20")),
    "rate_budget_per_second": float(os.environ.get("E2E_RATE_BUDGET", "5000")),
    "rate_budget_redis_url": os.environ.get("E2E_BUDGET_REDIS") or None,
    "rate_budget_account": os.environ.get("E2E_BUDGET_ACCOUNT", "default"),
}
