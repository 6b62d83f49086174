"""Run one measurement in a fresh process: its peak resident memory (``ru_maxrss``) is then that measurement's alone,
not the highest of every measurement the benchmark made before it."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import TypeVar

R = TypeVar("R")


def in_fresh_process(function: Callable[..., R], *args: object) -> R:
    """``function(*args)`` in a spawned process (a module-level function of the calling script)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)
