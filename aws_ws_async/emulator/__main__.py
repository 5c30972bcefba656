"""``python -m aws_ws_async.emulator``: the emulator without a Django project."""

from __future__ import annotations

import sys

from aws_ws_async.emulator.cli import main

sys.exit(main())
