"""DINO's projection head, shared by INO between CLS and patch tokens (docs/method.md §3.3).

MLP -> L2 normalisation -> weight-normalised linear layer without bias. With ``norm_last_layer`` the weight-norm
gain ``g`` is fixed at 1, so every row of the last layer is a unit vector and the outputs are cosines in [-1, 1]:
the logits the losses soften with temperatures 0.1 / 0.04 are therefore bounded, which is what keeps the
4096-way softmaxes from saturating.

The last layer uses ``torch.nn.utils.parametrizations.weight_norm`` (the hook-based ``nn.utils.weight_norm`` is
deprecated and its modules cannot be deep-copied, which the EMA teacher needs). Its state-dict keys are
``last_layer.parametrizations.weight.original0`` (g) and ``.original1`` (v); checkpoints written with the old
``last_layer.weight_g`` / ``weight_v`` keys (the official INO and DINO ones) still load, because PyTorch
registers a conversion hook for them.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


class ProjectionHead(nn.Module):
    """``DINOHead``: ``nlayers`` Linear layers with GELU in between, L2-normalise, then a weight-normed Linear.

    Applies to the last dimension, so CLS tokens (..., D) and patch tokens (..., N, D) go through the same
    instance. Submodule names (``mlp``, ``last_layer``) are DINO's, so official head weights map one to one.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 4096,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        nlayers: int = 3,
        norm_last_layer: bool = True,
    ) -> None:
        super().__init__()
        if nlayers < 1:
            raise ValueError(f"the projection head needs at least 1 layer, got nlayers={nlayers}")
        if min(in_dim, out_dim, hidden_dim, bottleneck_dim) < 1:
            raise ValueError(
                f"projection head sizes must be positive: in {in_dim}, hidden {hidden_dim}, "
                f"bottleneck {bottleneck_dim}, out {out_dim}"
            )
        if nlayers == 1:
            self.mlp: nn.Module = nn.Linear(in_dim, bottleneck_dim)
        else:
            layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim), nn.GELU()]
            for _ in range(nlayers - 2):
                layers += [nn.Linear(hidden_dim, hidden_dim), nn.GELU()]
            layers.append(nn.Linear(hidden_dim, bottleneck_dim))
            self.mlp = nn.Sequential(*layers)
        for module in self.mlp.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        # As in DINO the last layer keeps PyTorch's default init for v; only the gain g is reset to 1.
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        gain = self.last_layer.parametrizations.weight.original0
        with torch.no_grad():
            gain.fill_(1.0)
        gain.requires_grad_(not norm_last_layer)
        self.norm_last_layer = norm_last_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (..., out_dim) for tokens (..., in_dim); cosines in [-1, 1] when ``norm_last_layer``."""
        x = F.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(x)

    def last_layer_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters whose gradients DINO's ``freeze_last_layer`` drops during the first epoch(s)."""
        return self.last_layer.parameters()
