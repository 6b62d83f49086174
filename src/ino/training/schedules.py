"""Per-iteration schedules: learning rate, weight decay and teacher momentum (docs/method.md §6.1).

Everything follows DINO's ``utils.py`` as INO uses it: schedules are numpy arrays with one value per
iteration, indexed by the global iteration; the lr warms up linearly and then follows a half cosine; weight
decay and the teacher momentum follow a half cosine over the whole run, without warm-up.
"""

from __future__ import annotations

import numpy as np

#: INO's lr scaling divides by this many *frames* (DINO divides images by 256; INO clips hold 4 frames)
LR_REFERENCE_FRAMES = 1024


def cosine_schedule(
    base: float, final: float, total_steps: int, warmup_steps: int = 0, warmup_start: float = 0.0
) -> np.ndarray:
    """DINO's ``cosine_scheduler``: (total_steps,) float64 values.

    ``warmup_steps`` values go linearly from ``warmup_start`` to ``base`` (both included), then the rest
    follow ``final + (base - final) * (1 + cos(pi * i / n)) / 2`` for i = 0..n-1: the first equals ``base``,
    the last stops one step short of ``final``, exactly as DINO's.
    """
    if total_steps < 1:
        raise ValueError(f"a schedule needs at least one step, got total_steps={total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warm-up steps must lie in [0, {total_steps}], got {warmup_steps}")
    warmup = np.linspace(warmup_start, base, warmup_steps)
    steps = np.arange(total_steps - warmup_steps)
    cosine = final + 0.5 * (base - final) * (1 + np.cos(np.pi * steps / len(steps)))
    return np.concatenate((warmup, cosine))


def peak_lr(base_lr: float, total_clips: int, clip_len: int = 4) -> float:
    """The lr after warm-up: ``base_lr * total frames per step / 1024`` (= ``base_lr * total_clips / 256`` at 4 frames).

    INO scales by frames (clips per GPU x clip length x GPUs), so changing the clip length changes the peak lr.
    Charades: 3e-3 x 16 clips / 256 = 1.875e-4; Kinetics: 3e-4 x 32 / 256 = 3.75e-5.
    """
    if total_clips < 1 or clip_len < 1:
        raise ValueError(f"lr scaling needs positive clips and clip length, got {total_clips} and {clip_len}")
    return base_lr * total_clips * clip_len / LR_REFERENCE_FRAMES


def lr_schedule(
    base_lr: float, total_clips: int, total_steps: int, warmup_steps: int, min_lr: float = 1e-6, clip_len: int = 4
) -> np.ndarray:
    """Linear warm-up from 0 to ``peak_lr(base_lr, total_clips, clip_len)``, then half cosine to ``min_lr``."""
    return cosine_schedule(peak_lr(base_lr, total_clips, clip_len), min_lr, total_steps, warmup_steps)


def weight_decay_schedule(total_steps: int, start: float = 0.04, end: float = 0.4) -> np.ndarray:
    """Weight decay for the decayed parameter group: half cosine from ``start`` up to ``end``, no warm-up."""
    return cosine_schedule(start, end, total_steps)


def teacher_momentum_schedule(total_steps: int, start: float = 0.996, end: float = 1.0) -> np.ndarray:
    """Teacher EMA momentum: half cosine from ``start`` up to ``end``, no warm-up."""
    return cosine_schedule(start, end, total_steps)
