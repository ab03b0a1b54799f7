"""The paper's learning-rate schedule: linear warm-up, then polynomial decay to zero."""

from __future__ import annotations

from collections.abc import Callable

WARMUP_FRACTION = 0.1
POLY_POWER = 0.9


def warmup_poly(
    total_steps: int, *, warmup_fraction: float = WARMUP_FRACTION, power: float = POLY_POWER
) -> Callable[[int], float]:
    """LR multiplier for step s: (s+1)/W during W warm-up steps, then (1 - progress)^power."""
    warmup = max(1, round(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return max(0.0, 1.0 - progress) ** power

    return factor
