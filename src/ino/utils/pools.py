"""The worker pool for scoring: processes where forking is safe and cheap, else threads.

Scoring a frame is mostly short NumPy and OpenCV calls on crops, with Python holding the GIL between them, so
threads barely scale: scoring the 873 frame-objects of ``benchmarks/bench_evaluate.py --copies 3`` took 1.0-1.1 s
with one thread and with two, 0.6 s with two forked processes (2-core AMD EPYC, 2026-12-04). A forked worker
costs a few milliseconds and inherits the imported modules. Forking is safe only where the platform forks cleanly
(Linux) and the process runs no other threads whose state a child would inherit half-done: ``ino evaluate``
alone (no torch imported, one Python thread). In a process that has loaded torch (``ino suite``, a notebook that
propagated first) the pool is threads.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor


def forking_is_safe() -> bool:
    """Linux, one Python thread, and no torch (whose OpenMP and CUDA threads a child would inherit half-done)."""
    return sys.platform.startswith("linux") and threading.active_count() == 1 and "torch" not in sys.modules


def worker_pool(workers: int) -> Executor:
    """``workers`` forked processes when :func:`forking_is_safe`, else ``workers`` threads."""
    if forking_is_safe():
        return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    return ThreadPoolExecutor(max_workers=workers)
