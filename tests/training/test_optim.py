"""The optimiser side of a step: DINO's per-parameter gradient clipping, parameter groups, precision."""

from __future__ import annotations

import torch

from ino.configs.schema import ModelConfig
from ino.models.network import build_network
from ino.training.optim import autocast_dtype, clip_gradients_per_parameter, param_groups


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


def test_parameter_groups_decay_matrices_and_tokens_but_not_biases_norms_or_the_frozen_gain():
    network = build_network(ModelConfig(arch="vit_tiny", patch_size=16, img_size=32, out_dim=16, hidden_dim=8,
                                        bottleneck_dim=4))  # fmt: skip
    names = {id(p): n for n, p in network.named_parameters()}
    decayed, plain = ({names[id(p)] for p in group["params"]} for group in param_groups(network))
    assert {"backbone.pos_embed", "backbone.cls_token", "backbone.mask_token"} <= decayed
    assert "head.last_layer.parametrizations.weight.original1" in decayed
    assert "head.last_layer.parametrizations.weight.original0" not in decayed | plain  # g is frozen at 1
    assert all(n.endswith(".bias") or "norm" in n for n in plain)
    assert not decayed & plain


def test_precision_auto_is_bf16_on_gpus_and_fp32_on_cpus():
    assert autocast_dtype("auto", torch.device("cpu")) is None
    assert autocast_dtype("auto", torch.device("cuda")) is torch.bfloat16
    assert autocast_dtype("fp16", torch.device("cpu")) is torch.float16
