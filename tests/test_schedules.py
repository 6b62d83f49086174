"""Per-iteration schedules and per-parameter gradient clipping, against DINO's definitions (spec §6.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ino.errors import InoError
from ino.schedules import (
    clip_gradients_per_parameter,
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
    with pytest.raises(InoError):
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


def test_gradients_are_clipped_per_parameter_like_dino():
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.zeros(shape)) for shape in [(4, 5), (7,), (3, 3), (2,)]]
    scales = [10.0, 0.01, 1.0]
    for p, scale in zip(params[:3], scales, strict=True):
        p.grad = torch.randn(p.shape, generator=gen) * scale
    # params[3] has no gradient and is skipped
    before = [p.grad.clone() for p in params[:3]]
    norms = clip_gradients_per_parameter(params, clip=3.0)
    for p, g, norm in zip(params[:3], before, norms, strict=True):
        want_norm = g.norm(2)
        factor = 3.0 / (want_norm + 1e-6)
        want = g * factor if factor < 1 else g
        torch.testing.assert_close(norm, want_norm)
        torch.testing.assert_close(p.grad, want)
        assert p.grad.norm() <= 3.0 + 1e-4
    assert norms.shape == (3,)
    assert torch.equal(params[1].grad, before[1])  # small gradients are untouched, exactly
    assert params[3].grad is None
    assert clip_gradients_per_parameter([params[3]]).numel() == 0
