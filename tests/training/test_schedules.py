"""Per-iteration schedules against DINO's definitions (docs/method.md §6.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ino.training.schedules import (
    cosine_schedule,
    lr_schedule,
    peak_lr,
    teacher_momentum_schedule,
    weight_decay_schedule,
)


def test_cosine_schedule_endpoints_and_length():
    s = cosine_schedule(1.0, 0.1, total_steps=100, warmup_steps=20, warmup_start=0.5)
    assert s.shape == (100,)
    assert s[0] == 0.5 and s[19] == 1.0 and s[20] == 1.0  # linspace includes both ends; cosine starts at base
    np.testing.assert_allclose(np.diff(s[:20]), 0.5 / 19)
    assert s[-1] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 79 / 80)))  # one step short of final
    assert np.all(np.diff(s[20:]) < 0)
    no_warmup = cosine_schedule(2.0, 4.0, 10)
    assert no_warmup[0] == 2.0 and np.all(np.diff(no_warmup) > 0)
    assert len(cosine_schedule(1.0, 0.0, 5, warmup_steps=5)) == 5
    with pytest.raises(ValueError):
        cosine_schedule(1.0, 0.0, 5, warmup_steps=6)


def test_peak_lr_and_hyperparameter_schedules():
    assert peak_lr(3e-3, 16) == pytest.approx(1.875e-4)  # Charades, 4 GPUs x 4 clips
    assert peak_lr(3e-4, 32) == pytest.approx(3.75e-5)  # Kinetics, 8 GPUs x 4 clips
    assert peak_lr(3e-3, 16, clip_len=2) == pytest.approx(1.875e-4 / 2)  # INO scales by frames / 1024
    lr = lr_schedule(3e-3, 16, total_steps=50, warmup_steps=10)
    assert lr[0] == 0.0 and lr[9] == pytest.approx(1.875e-4) and lr.max() == pytest.approx(1.875e-4)
    assert lr[-1] == pytest.approx(1e-6 + 0.5 * (1.875e-4 - 1e-6) * (1 + math.cos(math.pi * 39 / 40)))
    wd = weight_decay_schedule(50)
    assert wd[0] == pytest.approx(0.04) and 0.39 < wd[-1] < 0.4
    ema = teacher_momentum_schedule(50)
    assert ema[0] == pytest.approx(0.996) and 0.9999 < ema[-1] < 1.0
