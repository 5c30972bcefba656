"""Registers the e2e harness fixtures (``tests/conftest.py`` loads every ``fixtures_*`` module)."""

from __future__ import annotations

from tests.e2e_harness import e2e_any_server, e2e_endpoint, e2e_project, e2e_server

__all__ = ["e2e_any_server", "e2e_endpoint", "e2e_project", "e2e_server"]
