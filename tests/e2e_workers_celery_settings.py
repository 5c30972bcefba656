"""The workers' e2e project on Celery: django-tasks-fennel's CeleryBackend, Redis as broker.

Everything else (shard size, checkpoint interval, lease, rate budget) as
tests/e2e_workers_settings.py; only the task backend differs. Celery finds task modules by
``autodiscover_tasks`` (``<app>.tasks``) or ``CELERY_IMPORTS``: ours live in
``aws_ws_async.scaleout.tasks`` and ``aws_ws_async.admin_jobs``, so they are listed here.
"""

from __future__ import annotations

import os

from tests.e2e_workers_settings import *  # noqa: F403
from tests.e2e_workers_settings import INSTALLED_APPS

INSTALLED_APPS = [a for a in INSTALLED_APPS if a != "django_tasks_db"] + ["django_tasks_fennel"]
TASKS = {"default": {"BACKEND": "django_tasks_fennel.CeleryBackend", "QUEUES": ["default"]}}
CELERY_BROKER_URL = os.environ.get("E2E_CELERY_BROKER", "redis://127.0.0.1:6379/1")
CELERY_RESULT_BACKEND = os.environ.get("E2E_CELERY_RESULTS", CELERY_BROKER_URL)
CELERY_RESULT_EXTENDED = True
CELERY_IMPORTS = ["aws_ws_async.scaleout.tasks", "aws_ws_async.admin_jobs"]
# A worker killed with kill -9 loses its prefetched and running messages unless they are acked
# late (the lease then resumes the shard from its checkpoint either way).
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
