"""INO's backbone: timm's ``VisionTransformer`` plus a mask token and DINO's exact pos-embed resampling.

The released INO and DINO weights were trained with DINO's ViT, whose parameter names and maths equal timm's,
so we reuse timm's blocks and keep its state-dict keys (DINO checkpoints load with ``strict=True``). Three
things differ from a stock timm model and are added here (docs/method.md §3.1, §3.2, §7.3):

- a learnable ``mask_token`` that replaces masked patch embeddings *before* the position embedding is added;
- position-embedding interpolation with DINO's recipe (bicubic, ``scale_factor=(h+0.1)/g``, no antialias).
  timm's own resampler antialiases and gives features 1-10 % away from the released model's;
- ``patch_features``: one intermediate block through the final norm, stopping early (INO's "7th layer").

The private timm API used (``patch_embed``, ``_pos_embed``, ``patch_drop``, ``norm_pre``, ``blocks``,
``norm``) is pinned by ``tests/test_vit.py``.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from ino.configs.schema import PATCH_SIZES, VIT_ARCHS
from ino.errors import InoError


class InoViT(VisionTransformer):
    """A DINO-style ViT (CLS + patches, no head) with a mask token; keys are DINO's plus ``mask_token``.

    Accepts any input whose sides are multiples of ``patch_size``; the position embedding (stored on the
    ``img_size / patch_size`` grid) is resampled to the input grid with DINO's recipe.
    """

    def __init__(self, arch: str, patch_size: int, img_size: int, drop_path_rate: float) -> None:
        embed_dim, depth, num_heads = VIT_ARCHS[arch]
        super().__init__(
            img_size=img_size,
            patch_size=patch_size,
            num_classes=0,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=4.0,
            qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6),
            dynamic_img_size=True,
            drop_path_rate=drop_path_rate,
        )
        self.arch = arch
        self.patch_size = patch_size
        self.img_size = img_size
        # provenance, set by ino.models.weights.load_backbone and written into exports
        self.source = "build_vit"
        self.initialised_keys: tuple[str, ...] = ()
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        # timm already draws Linear weights with trunc_normal(0.02), zero biases, unit LayerNorms, keeps the
        # conv's PyTorch default and draws pos_embed with trunc_normal(0.02); DINO draws the CLS token so too.
        trunc_normal_(self.cls_token, std=0.02)
        trunc_normal_(self.mask_token, std=0.02)
        # grid -> (pos_embed the entry was computed from, resampled embedding); see interpolated_pos_embed
        self._pos_cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def interpolated_pos_embed(self, h: int, w: int) -> torch.Tensor:
        """Position embedding (1, 1 + h*w, D) for an h x w patch grid, resampled exactly as DINO and INO do.

        In eval mode without autograd the result is cached per grid (inference re-uses a handful of grids).
        Each entry remembers the ``pos_embed`` values it came from and is recomputed when they differ, so
        loading weights or EMA updates through ``.data`` never leave a stale entry. Train mode skips the cache
        and with it the value check (a device sync per call).
        """
        pos_embed = self.pos_embed
        if self.training or (torch.is_grad_enabled() and pos_embed.requires_grad):
            return self._resample_pos_embed(pos_embed, h, w)
        hit = self._pos_cache.get((h, w))
        if hit is not None:
            source, resampled = hit
            if source.device == pos_embed.device and source.dtype == pos_embed.dtype and torch.equal(source, pos_embed):
                return resampled
        resampled = self._resample_pos_embed(pos_embed, h, w)
        self._pos_cache[(h, w)] = (pos_embed.detach().clone(), resampled)
        return resampled

    def _resample_pos_embed(self, pos_embed: torch.Tensor, h: int, w: int) -> torch.Tensor:
        gh, gw = self.patch_embed.grid_size
        if (h, w) == (gh, gw):
            return pos_embed
        dim = pos_embed.shape[-1]
        grid = pos_embed[:, 1:].reshape(1, gh, gw, dim).permute(0, 3, 1, 2)
        # DINO's +0.1 guards against floor() rounding the output size down; the scale factor (not the size)
        # drives the sampling positions, which is what makes the values differ from a size-based resize.
        grid = F.interpolate(grid, scale_factor=((h + 0.1) / gh, (w + 0.1) / gw), mode="bicubic", align_corners=False)
        if grid.shape[-2:] != (h, w):
            raise RuntimeError(f"position embedding resampled to {tuple(grid.shape[-2:])}, expected {(h, w)}")
        grid = grid.permute(0, 2, 3, 1).reshape(1, h * w, dim)
        return torch.cat([pos_embed[:, :1], grid], dim=1)

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        """Prepend CLS and add the DINO-resampled position embedding to NHWC patch embeddings (timm hook)."""
        batch, h, w, dim = x.shape
        x = torch.cat([self.cls_token.expand(batch, -1, -1), x.reshape(batch, h * w, dim)], dim=1)
        return self.pos_drop(x + self.interpolated_pos_embed(h, w))

    def _embed(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, int, int]:
        """Tokens entering block 0; masked patches become ``mask_token`` before the position embedding."""
        patches = self.patch_embed(x)  # (B, h, w, D)
        batch, h, w, _ = patches.shape
        if mask is not None:
            if mask.shape != (batch, h * w):
                raise ValueError(f"mask must have shape {(batch, h * w)}, got {tuple(mask.shape)}")
            if mask.any():
                keep = ~mask.reshape(batch, h, w, 1)
                patches = torch.where(keep, patches, self.mask_token.to(patches.dtype))
        tokens = self.norm_pre(self.patch_drop(self._pos_embed(patches)))
        return tokens, h, w

    def forward_tokens(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run all blocks and the final norm on images (B, 3, H, W); return CLS (B, D) and patches (B, N, D).

        ``mask`` is a bool (B, N) tensor, True where the patch is replaced by ``mask_token`` (student global
        crops in masked iterations). With no True entry nothing is replaced and ``mask_token`` gets no
        gradient.
        """
        tokens, _, _ = self._embed(x, mask)
        tokens = self.norm(self.blocks(tokens))
        return tokens[:, 0], tokens[:, 1:]

    def patch_features(self, x: torch.Tensor, block: int = 6) -> torch.Tensor:
        """Patch features (B, D, h, w) of transformer block ``block`` (0-based) through the final norm.

        This is INO's inference feature (``test_last_n_layer=6`` = block 7 of 12). Later blocks are not run.
        """
        if not 0 <= block < len(self.blocks):
            last = len(self.blocks) - 1
            raise InoError(f"feature block {block} does not exist: the backbone has blocks 0..{last}")
        tokens, h, w = self._embed(x, None)
        for layer in self.blocks[: block + 1]:
            tokens = layer(tokens)
        patches = self.norm(tokens)[:, 1:]
        return patches.transpose(1, 2).reshape(x.shape[0], -1, h, w)


def build_vit(arch: str = "vit_small", patch_size: int = 8, img_size: int = 64, drop_path_rate: float = 0.0) -> InoViT:
    """Build a randomly initialised backbone (draws from the global torch RNG; seed it for determinism).

    ``img_size`` only sets the stored position-embedding grid (INO: 64 -> 8x8, 65 tokens; DINO: 224 -> 28x28);
    inputs of any size are accepted. Students use ``drop_path_rate`` 0.1, teachers and inference 0.
    """
    if arch not in VIT_ARCHS:
        raise InoError(f"unknown backbone architecture {arch!r}; choose one of {', '.join(VIT_ARCHS)}")
    if patch_size not in PATCH_SIZES:
        raise InoError(f"unsupported patch size {patch_size}; choose one of {PATCH_SIZES}")
    if img_size < patch_size or img_size % patch_size:
        raise InoError(f"img_size {img_size} must be a positive multiple of the patch size {patch_size}")
    return InoViT(arch, patch_size, img_size, drop_path_rate)
