"""Sharded, resumable broadcasts run by Django task workers (``qs.enqueue_message``).

:mod:`.runner` holds the logic, :mod:`.tasks` the task definitions (imported lazily: the task
framework is an optional extra), :mod:`.framework` finds ``django.tasks`` or ``django_tasks``.
"""
