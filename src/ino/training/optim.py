"""The optimiser side of a training step: AdamW's parameter groups, mixed precision and DINO's gradient clipping.

docs/method.md §5.6 and §6.1: group 0 (decayed) holds every trainable tensor with ndim > 1 that is not a bias --
position embedding, CLS and mask tokens and the head's last-layer ``v`` included --, group 1 the rest with weight
decay 0; gradients are clipped per parameter (not by one global norm); bf16 autocast on GPUs by default.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def param_groups(network: nn.Module) -> list[dict]:
    """Group 0 (decayed): every trainable tensor with ndim > 1 that is not a bias; group 1: the rest (wd 0)."""
    decayed, plain = [], []
    for name, parameter in network.named_parameters():
        if not parameter.requires_grad:
            continue
        (plain if name.endswith(".bias") or parameter.ndim <= 1 else decayed).append(parameter)
    return [{"params": decayed}, {"params": plain, "weight_decay": 0.0}]


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``optim.precision``: ``auto`` is bf16 on GPU and fp32 (None: no autocast) on the CPU."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[precision]


@torch.no_grad()
def clip_gradients_per_parameter(params: Iterable[nn.Parameter], clip: float = 3.0) -> torch.Tensor:
    """DINO's ``clip_gradients``: scale each gradient separately to norm at most about ``clip``.

    For every parameter with a gradient, ``grad *= clip / (||grad|| + 1e-6)`` when that factor is below 1; this
    is per parameter, not one global norm. Returns the pre-clipping norms (one per parameter that has a gradient,
    in order) as a tensor, without a host sync. Done with fused ``_foreach`` ops.
    """
    if clip <= 0:
        raise ValueError(f"gradient clip must be positive, got {clip}")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(0)
    norms = torch.stack(torch._foreach_norm(grads))
    factors = (clip / (norms + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(grads, list(factors.unbind()))
    return norms
