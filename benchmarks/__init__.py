"""Benchmarks for aws_ws_async (run ``python -m benchmarks.broadcast --help``)."""
