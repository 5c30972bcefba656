"""The workers' e2e project on RQ: django-tasks-rq, its queue in Redis (``E2E_RQ_URL``).

Everything else (shard size, checkpoint interval, lease, rate budget) as
tests/e2e_workers_settings.py; only the task backend differs.
"""

from __future__ import annotations

import os

from tests.e2e_workers_settings import *  # noqa: F403
from tests.e2e_workers_settings import INSTALLED_APPS

INSTALLED_APPS = [a for a in INSTALLED_APPS if a != "django_tasks_db"] + [
    "django_rq",
    "django_tasks_rq",
]
TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
RQ_QUEUES = {"default": {"URL": os.environ.get("E2E_RQ_URL", "redis://127.0.0.1:6379/1")}}
