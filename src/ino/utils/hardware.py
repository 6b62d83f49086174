"""What this machine's CPU can do fast, read once from the operating system (no torch import, no benchmark).

bfloat16 pays on a CPU only where its matrix units take bf16 natively: x86 ``avx512_bf16`` (AMD Zen 4 and later,
Intel Cooper Lake) or ``amx_bf16`` (Intel Sapphire Rapids and later), ARM ``bf16`` (Neoverse V1/N2, Apple M2 and
later). Elsewhere PyTorch emulates it and it runs slower than float32 (measured on an older CPU, docs/propagation.md),
so the choice is made from the CPU's flags, not from the instruction set PyTorch was built for.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

#: /proc/cpuinfo flags (x86 "flags", ARM "Features") that mean native bf16 dot products.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The first CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none: macOS, Windows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return frozenset()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bfloat16 natively (see the module docstring); Apple silicon from M2 on
    reports it through ``hw.optional.arm.FEAT_BF16``, which is not read here, so macOS says False."""
    return platform.system() == "Linux" and bool(cpu_flags() & BF16_FLAGS)
