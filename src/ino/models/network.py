"""Backbone + shared projection head: what the student (trained, DDP-wrapped) and the teacher (EMA copy) are.

One forward covers a training step's needs (docs/method.md §3.2-3.3, §5): the CLS logits of the global crops (masked
for the student in masked steps), the head logits of the chosen patch tokens of the global crops, and the CLS
logits of the local crops. Local crops' patch tokens never go through the head (the authors computed and
discarded them), and in a faithful masked step only the K masked positions do, not all 784: the losses only
read those.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ino.configs.schema import ModelConfig
from ino.models.head import ProjectionHead
from ino.models.vit import InoViT, build_vit


@dataclass
class NetworkOutput:
    """Head logits: global CLS (T*B, C), selected patches (T*B, K, C) or None, local CLS (T*M*B, C) or None."""

    global_cls: torch.Tensor
    patches: torch.Tensor | None
    local_cls: torch.Tensor | None


class InoNetwork(nn.Module):
    """A backbone and the projection head shared by its CLS and patch tokens."""

    def __init__(self, backbone: InoViT, head: ProjectionHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(
        self,
        global_crops: torch.Tensor,
        local_crops: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        patch_index: torch.Tensor | None = None,
    ) -> NetworkOutput:
        """Logits for one step.

        ``mask`` (T*B, N) bool replaces those patches of the global crops by the mask token (student only).
        ``patch_index`` picks the patch tokens that go through the head: a (K,) long tensor of positions shared
        by every crop (faithful shared mask) or None for none; pass ``torch.arange(N)`` for all of them.
        """
        cls, patches = self.backbone.forward_tokens(global_crops, mask)
        tokens = [cls]
        selected = 0
        if patch_index is not None and patch_index.numel():
            chosen = patches.index_select(1, patch_index)
            selected = chosen.shape[1]
            tokens.append(chosen.flatten(0, 1))
        local_cls = None
        if local_crops is not None and local_crops.numel():
            local_cls, _ = self.backbone.forward_tokens(local_crops)
            tokens.append(local_cls)
        # one head call over all rows: fewer kernel launches, same maths (the head is row-wise)
        logits = self.head(torch.cat(tokens))
        n_global = cls.shape[0]
        global_logits = logits[:n_global]
        patch_logits = None
        if selected:
            patch_logits = logits[n_global : n_global + n_global * selected].view(n_global, selected, -1)
        local_logits = logits[n_global + n_global * selected :] if local_cls is not None else None
        return NetworkOutput(global_logits, patch_logits, local_logits)


def build_network(config: ModelConfig) -> InoNetwork:
    """The student network a model configuration describes, randomly initialised (draws from the global torch RNG:
    seed it first), with the backbone of ``config.init`` loaded when it names a weights file."""
    backbone = build_vit(config.arch, config.patch_size, config.img_size, config.drop_path)
    if config.init != "random":
        from ino.models.weights import load_backbone

        loaded = load_backbone(config.init, arch=config.arch, patch_size=config.patch_size)
        backbone.load_state_dict(loaded.state_dict())
    head = ProjectionHead(backbone.embed_dim, config.out_dim, config.hidden_dim, config.bottleneck_dim)
    return InoNetwork(backbone, head)
