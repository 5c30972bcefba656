#!/usr/bin/env python
"""Management entry point of the aws_ws_async example project."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    # Make the repository root importable so the example runs from a checkout without install.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
