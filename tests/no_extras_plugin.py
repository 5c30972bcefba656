"""pytest plugin (``-p tests.no_extras_plugin``): the optional extras cannot be imported.

``opentelemetry`` (extra ``[otel]``) and ``prometheus_client`` (extra ``[prometheus]``) raise
``ModuleNotFoundError`` on import, exactly as when they are not installed, for the whole run:
loaded with ``-p`` it is in place before any test module or our package is imported. Used by
``tests/test_telemetry_without_extras.py`` (a pytest run in a subprocess).
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

BLOCKED = ("opentelemetry", "prometheus_client")


class BlockExtras(importlib.abc.MetaPathFinder):
    """Refuses the extras' top-level packages and everything under them."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> Any:
        if fullname.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (extras blocked)", name=fullname
            )
        return None


for _name in [n for n in sys.modules if n.partition(".")[0] in BLOCKED]:
    del sys.modules[_name]
sys.meta_path.insert(0, BlockExtras())
