"""Where a route's server CPU goes: py-spy attached to the benchmark's real server process.

``python -m benchmarks.request_server --profile DIR`` records every mode's server with py-spy
(``--format raw``: one collapsed stack per line with its sample count; idle threads are not
sampled, and with ``--gil`` only the thread holding the GIL: Python CPU) in one extra round
of each scenario, then prints, per route, the share of samples in
each component below. A sample is charged to the component of its innermost frame that has
one (self time by component): a query's psycopg frames are the ORM's even inside a
``sync_to_async`` thread, and "thread hops" is what the hop itself costs (executor, futures,
thread start/join and wake-ups, asgiref's context copies).

py-spy is a separate binary (``pip install py-spy``); without it ``--profile`` says so and the
benchmark runs unprofiled.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

#: ``(component, substrings of a frame)``, in the order a sample is charged.
COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ORM + database driver", ("django/db/", "psycopg", "sqlite3")),
    ("logging", ("logging/",)),
    ("JSON", ("json/",)),
    ("thread hops (asgiref, executor)", ("asgiref/", "concurrent/futures", "threading.py")),
    ("our view and checks", ("aws_ws_async/", "benchmarks/")),
    ("middleware", ("django/middleware/", "django/contrib/")),
    ("response building/sending", ("django/http/response.py",)),
    ("signals", ("django/dispatch/",)),
    ("Django handler + request", ("django/core/handlers/", "django/http/", "django/urls/")),
    ("WSGI server (gunicorn)", ("gunicorn/",)),
    ("HTTP server (uvicorn)", ("uvicorn/", "httptools", "h11")),
    ("event loop", ("asyncio/", "uvloop")),
)
OTHER = "other (interpreter, GC, unattributed)"


def executable() -> str | None:
    """py-spy on PATH or beside this interpreter (a venv's bin/)."""
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


def available() -> bool:
    return executable() is not None


def start(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """Attach py-spy to ``pid`` (all threads, subprocesses for gunicorn's worker)."""
    command = [
        executable() or "py-spy", "record", "--pid", str(pid), "--rate", "500", "--format", "raw",
        "--subprocesses", "--nonblocking", "--gil", "--output", str(output),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(recorder: subprocess.Popen[bytes]) -> None:
    recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    try:
        recorder.wait(timeout=30)
    except subprocess.TimeoutExpired:
        recorder.kill()


def component_of(stack: str) -> str:
    """The component of the innermost frame that belongs to one (the sample's own code)."""
    for frame in reversed(stack.split(";")[1:]):
        for name, needles in COMPONENTS:
            if any(needle in frame for needle in needles):
                return name
    return OTHER


def breakdown(path: Path) -> dict[str, float]:
    """Percent of samples per component, from one py-spy ``raw`` file."""
    counts: Counter[str] = Counter()
    if not path.exists():
        return {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        counts[component_of(stack)] += int(count)
    total = sum(counts.values())
    if not total:
        return {}
    return {name: 100 * n / total for name, n in counts.most_common()}


def report(directory: Path) -> dict[str, dict[str, float]]:
    """Every recorded ``<mode>-<scenario>.txt`` in ``directory``, printed and returned."""
    result = {p.stem: breakdown(p) for p in sorted(directory.glob("*.txt"))}
    for name, shares in result.items():
        print(f"\nprofile {name} (percent of py-spy samples)")
        for component, share in shares.items():
            print(f"  {share:5.1f}  {component}")
    (directory / "breakdown.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
