"""The scorer's process setting: freed memory kept for reuse under glibc, nothing done elsewhere."""

from __future__ import annotations

import os

from ino.evaluation import scorer


def test_freed_memory_is_kept_only_under_glibc(monkeypatch):
    try:
        os.confstr("CS_GNU_LIBC_VERSION")
        glibc = True
    except (ValueError, OSError):
        glibc = False
    assert scorer.keep_freed_memory() is glibc

    def not_glibc(name: str) -> str:
        raise ValueError(f"unrecognized configuration name {name}")

    monkeypatch.setattr(scorer.os, "confstr", not_glibc)
    assert scorer.keep_freed_memory() is False
