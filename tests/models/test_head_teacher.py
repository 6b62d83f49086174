"""The DINO projection head (docs/method.md §3.3) and the EMA teacher (docs/method.md §5.6 step 6)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ino.models.head import ProjectionHead
from ino.models.teacher import ema_update, make_teacher


def small_head(**kwargs) -> ProjectionHead:
    torch.manual_seed(0)
    return ProjectionHead(8, out_dim=32, hidden_dim=16, bottleneck_dim=6, **kwargs)


def gain(head: ProjectionHead) -> torch.Tensor:
    return head.last_layer.parametrizations.weight.original0


def test_head_layout_init_and_cosine_outputs():
    head = small_head()
    linears = [m for m in head.mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 16), (16, 16), (16, 6)]
    assert all(isinstance(m, nn.GELU) for m in head.mlp[1::2])
    assert all(torch.equal(m.bias, torch.zeros_like(m.bias)) for m in linears)
    big = ProjectionHead(64, out_dim=8, hidden_dim=256, bottleneck_dim=8)
    assert big.mlp[2].weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert head.last_layer.bias is None and head.last_layer.weight.shape == (32, 6)
    assert torch.equal(gain(head), torch.ones(32, 1)) and not gain(head).requires_grad
    x = torch.randn(5, 7, 8) * 10
    out = head(x)
    assert out.shape == (5, 7, 32)
    assert out.abs().max() <= 1 + 1e-6  # unit rows times a unit vector: cosines
    # g = 1: every row of the effective weight is a unit vector
    assert torch.allclose(head.last_layer.weight.norm(dim=1), torch.ones(32))
    assert ProjectionHead(8, out_dim=4, nlayers=1).mlp.out_features == 256


def test_gain_stays_frozen_through_training_and_last_layer_params_are_known():
    head = small_head()
    optimiser = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=0.1)
    head(torch.randn(4, 8)).pow(2).sum().backward()
    optimiser.step()
    assert torch.equal(gain(head), torch.ones(32, 1)) and gain(head).grad is None
    names = {id(p): n for n, p in head.named_parameters()}
    assert sorted(names[id(p)] for p in head.last_layer_parameters()) == [
        "last_layer.parametrizations.weight.original0",
        "last_layer.parametrizations.weight.original1",
    ]
    assert gain(small_head(norm_last_layer=False)).requires_grad
    with pytest.raises(ValueError):
        ProjectionHead(8, nlayers=0)


def test_official_weight_g_weight_v_keys_load():
    head = small_head()
    legacy = {k: v for k, v in head.state_dict().items() if not k.startswith("last_layer")}
    legacy["last_layer.weight_g"] = torch.ones(32, 1)
    legacy["last_layer.weight_v"] = torch.randn(32, 6)
    head.load_state_dict(legacy)
    expected = legacy["last_layer.weight_v"] / legacy["last_layer.weight_v"].norm(dim=1, keepdim=True)
    torch.testing.assert_close(head.last_layer.weight, expected)


def test_teacher_is_an_independent_frozen_eval_copy():
    student = nn.Sequential(nn.Dropout(0.5), small_head()).train()
    teacher = make_teacher(student)
    assert not teacher.training and student.training
    assert all(not p.requires_grad for p in teacher.parameters())
    x = torch.randn(3, 8)
    torch.testing.assert_close(teacher(x), teacher(x))  # no dropout / drop path in the teacher
    torch.testing.assert_close(teacher(x), student.eval()(x))
    with torch.no_grad():
        next(student.parameters()).add_(1.0)
    assert not torch.equal(next(student.parameters()), next(teacher.parameters()))
    assert copy.deepcopy(teacher)(x).shape == (3, 32)


def test_ema_update_equals_the_formula_and_keeps_the_gain_at_one():
    student = small_head().double()
    teacher = make_teacher(student)
    with torch.no_grad():
        for p in student.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p))
    before = [p.clone() for p in teacher.parameters()]
    ema_update(teacher, student, 0.996)
    for t, t0, s in zip(teacher.parameters(), before, student.parameters(), strict=True):
        torch.testing.assert_close(t, 0.996 * t0 + 0.004 * s, rtol=0, atol=1e-12)
    assert torch.equal(gain(teacher), torch.ones(32, 1, dtype=torch.float64))
    before = [p.clone() for p in teacher.parameters()]
    ema_update(teacher, student, 1.0)
    assert all(torch.equal(t, t0) for t, t0 in zip(teacher.parameters(), before, strict=True))
    ema_update(teacher, student, 0.0)
    assert all(torch.equal(t, s) for t, s in zip(teacher.parameters(), student.parameters(), strict=True))
    with pytest.raises(ValueError):
        ema_update(teacher, small_head(nlayers=2), 0.9)
    with pytest.raises(ValueError):
        ema_update(teacher, student, 1.5)
