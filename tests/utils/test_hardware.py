"""CPU flags behind the bf16 default."""

from __future__ import annotations

from ino.utils.hardware import BF16_FLAGS, cpu_flags

ZEN4 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
ZEN3 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 fma\n"
NEOVERSE_V1 = "processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_native_bf16_is_read_from_the_cpu_flags() -> None:
    assert cpu_flags(ZEN4) & BF16_FLAGS == {"avx512_bf16"}
    assert not cpu_flags(ZEN3) & BF16_FLAGS
    assert cpu_flags(NEOVERSE_V1) & BF16_FLAGS == {"bf16"}
    assert cpu_flags("") == frozenset()
