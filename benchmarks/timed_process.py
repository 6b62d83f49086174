"""A command timed as a user runs it: a new process from start to finish, its wall time and the CPU time of it and
the children it waited for. Shared by the benchmarks that put ``ino`` beside another tool (``bench_evaluate.py``,
``bench_suite.py``), so both sides of every ratio are measured the same way."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path


def ino_command() -> list[str]:
    """``ino`` as installed beside this Python (what a user types), else ``python -m ino``."""
    script = Path(sys.executable).with_name("ino")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ino"]


def run_timed(
    command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, ``RUSAGE_CHILDREN``) and stdout of one run to completion; a failed
    run stops the benchmark with the command, its exit status and the end of what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"{' '.join(command)} exited with {done.returncode}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout
