"""Which reduced precisions this machine's CPU computes natively (bf16 from /proc/cpuinfo).

bf16 halves the memory traffic of a ViT and, on CPUs with native bf16 dot products (x86
AVX-512 BF16 or AMX, aarch64 BF16), runs about twice as fast as fp32 (see the README's backend
table). Without them torch emulates bf16 (slower than fp32) and OpenVINO quietly falls back to
fp32, so the Engine asks this module before it promises bf16 on a CPU, and reports the answer.
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path

__all__ = ['CPU_BF16_FLAGS', 'CpuPrecision', 'cpu_precision', 'parse_cpu_flags']

CPU_BF16_FLAGS: tuple[str, ...] = ('avx512_bf16', 'amx_bf16', 'bf16')
"""/proc/cpuinfo flags meaning native bf16: x86 AVX-512 BF16, x86 AMX-BF16, aarch64 BF16."""
CPUINFO = Path('/proc/cpuinfo')
_FLAG_KEYS = ('flags', 'features')
"""The cpuinfo line listing the CPU's features: ``flags`` on x86, ``Features`` on aarch64."""


@dataclass(frozen=True)
class CpuPrecision:
    """What the CPU offers for reduced precision.

    Attributes:
        model: The CPU's name, as reported (for logs and diagnostics).
        bf16_flags: The `CPU_BF16_FLAGS` the CPU has (empty: no native bf16).
    """

    model: str
    bf16_flags: tuple[str, ...]

    @property
    def native_bf16(self) -> bool:
        """True when bf16 matrix products run in hardware (AVX-512 BF16, AMX or aarch64 BF16)."""
        return bool(self.bf16_flags)

    def describe(self) -> str:
        """One phrase for logs: ``native bf16 (amx_bf16, avx512_bf16)`` or ``no native bf16``."""
        if self.native_bf16:
            return f'native bf16 ({", ".join(self.bf16_flags)})'
        return 'no native bf16 (no avx512_bf16 / amx_bf16 flag)'


def parse_cpu_flags(cpuinfo: str) -> tuple[str, tuple[str, ...]]:
    """(CPU model name, sorted `CPU_BF16_FLAGS` present) from the text of /proc/cpuinfo.

    Only the first processor's lines are read: every core of one machine has the same flags.
    """
    model = ''
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(':')
        key = key.strip().lower()
        if key in ('model name', 'cpu model') and not model:
            model = value.strip()
        elif key in _FLAG_KEYS and not flags:
            flags = set(value.split())
    return model, tuple(sorted(flag for flag in CPU_BF16_FLAGS if flag in flags))


@functools.lru_cache(maxsize=1)
def cpu_precision() -> CpuPrecision:
    """This machine's `CpuPrecision` (read once; a CPU without /proc/cpuinfo has no bf16 here)."""
    try:
        text = CPUINFO.read_text(errors='replace')
    except OSError:
        return CpuPrecision(platform.processor() or platform.machine(), ())
    model, flags = parse_cpu_flags(text)
    return CpuPrecision(model or platform.processor() or platform.machine(), flags)
