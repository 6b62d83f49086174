"""Random weights written as the upstream releases lay them out (no download), and timm's own features to compare
``ino``'s with (``tests/models/test_timm_backbones.py``, ``benchmarks/timm_parity.py``).

Each layout function takes a timm model's state dict and returns the file contents its family's release would hold
for the same network.

Written from the upstream code's parameter names, not from timm's filters (which ``ino`` uses to read them):
- DINO ``dino_deitsmall8_pretrain.pth``: timm's keys exactly, a plain state dict;
- DINOv2 hub ``dinov2_vits14[_reg4]_pretrain.pth`` (facebookresearch/dinov2 ``DinoVisionTransformer``):
  ``mask_token`` (1, D), ``register_tokens``, a class-token position in ``pos_embed`` (518 px: 1 + 37*37);
- DINOv3 ``dinov3_vits16_pretrain_lvd1689m-*.pth`` (facebookresearch/dinov3): ``storage_tokens``,
  ``rope_embed.periods``, ``blocks.N.ls1.gamma``, one ``attn.qkv.bias`` with its ``bias_mask`` (key part 0);
- MAE ``mae_pretrain_vit_base.pth`` (``{"model": encoder}``) and the CropMAE / SiamMAE training checkpoints
  (alexandre-eymael/CropMAE ``misc.save_model``: model with its pixel decoder, optimizer, epoch, scaler, args).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from ino.models.timm_backbone import TimmBackbone, build_timm_backbone
from ino.propagation.features import FeatureExtractor, normalise, resize_frame
from ino.propagation.presets import for_patch_size, resolve_config

Tensors = dict[str, torch.Tensor]


def dinov2_hub(timm_state: Tensors, seed: int = 0) -> Tensors:
    """Meta's DINOv2 backbone from a timm ``vit_*_patch14[_reg4]_dinov2`` state dict.

    timm folds the class token's position into ``cls_token`` for register models; here it is split back out with
    a random class-token position, which only their sum must survive.
    """
    state = dict(timm_state)
    width = state["cls_token"].shape[-1]
    if "reg_token" in state:
        class_position = torch.randn(1, 1, width, generator=torch.Generator().manual_seed(seed))
        state["register_tokens"] = state.pop("reg_token")
        state["cls_token"] = state["cls_token"] - class_position
        state["pos_embed"] = torch.cat([class_position, state["pos_embed"]], dim=1)
    state["mask_token"] = torch.zeros(1, width)
    return state


def dinov3_periods(head_width: int, base: float = 100.0) -> torch.Tensor:
    """``RopePositionEmbedding.periods`` of facebookresearch/dinov3 for one attention head's width."""
    exponents = 2 * torch.arange(head_width // 4, dtype=torch.float32) / (head_width // 2)
    return base**exponents


def dinov3_release(timm_state: Tensors, num_heads: int, seed: int = 0) -> Tensors:
    """Meta's DINOv3 backbone from a timm ``vit_*_patch16_dinov3[_qkvb]`` state dict.

    The key part of each qkv bias holds random values that the stored ``bias_mask`` zeroes, as Meta's
    ``LinearKMaskedBias`` does; a model without q/v biases gets zeros there.
    """
    generator = torch.Generator().manual_seed(seed)
    state: Tensors = {}
    width = timm_state["cls_token"].shape[-1]
    for key, value in timm_state.items():
        if key.endswith((".attn.q_bias", ".attn.v_bias")):
            continue
        name = key.replace("reg_token", "storage_tokens")
        name = name.replace(".gamma_1", ".ls1.gamma").replace(".gamma_2", ".ls2.gamma")
        state[name] = value
        if key.endswith(".attn.qkv.weight"):
            prefix = key.removesuffix("qkv.weight")
            zeros = torch.zeros(width)
            query, value_bias = (timm_state.get(prefix + part, zeros) for part in ("q_bias", "v_bias"))
            junk = torch.randn(width, generator=generator)
            state[prefix + "qkv.bias"] = torch.cat([query, junk, value_bias])
            state[prefix + "qkv.bias_mask"] = torch.cat([torch.ones(width), torch.zeros(width), torch.ones(width)])
    state["rope_embed.periods"] = dinov3_periods(width // num_heads).to(torch.bfloat16)  # as Meta's files hold it
    state["mask_token"] = torch.zeros(1, width)
    return state


def mae_release(timm_state: Tensors) -> dict[str, Tensors]:
    """MAE's ``mae_pretrain_vit_*.pth``: the encoder under ``"model"``."""
    return {"model": dict(timm_state)}


def cropmae_checkpoint(timm_state: Tensors, decoder_width: int = 256, seed: int = 0) -> dict[str, object]:
    """A CropMAE / SiamMAE ``checkpoint-N.pth``: encoder and pixel decoder under ``"model"``, training state."""
    generator = torch.Generator().manual_seed(seed)
    width = timm_state["cls_token"].shape[-1]
    tokens = timm_state["pos_embed"].shape[1]

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    decoder = {
        "mask_token": draw(1, 1, decoder_width),
        "decoder_embed.weight": draw(decoder_width, width),
        "decoder_embed.bias": draw(decoder_width),
        "decoder_pos_embed": draw(1, tokens, decoder_width),
        "decoder_blocks.0.self_attn.in_proj_weight": draw(3 * decoder_width, decoder_width),
        "decoder_blocks.0.multihead_attn.in_proj_weight": draw(3 * decoder_width, decoder_width),
        "decoder_blocks.0.linear1.weight": draw(2048, decoder_width),
        "decoder_blocks.0.norm3.weight": draw(decoder_width),
        "decoder_norm.weight": draw(decoder_width),
        "decoder_pred.weight": draw(16 * 16 * 3, decoder_width),
        "decoder_pred.bias": draw(16 * 16 * 3),
    }
    return {
        "model": {**timm_state, **decoder},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1.5e-4, "weight_decay": 0.05, "params": [0, 1]}]},
        "epoch": 399,
        "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000},
        "args": argparse.Namespace(model="vits", mask_ratio=0.985, output_dir="runs/cropmae", batch_size=256),
    }


#: family -> (timm name, the release layout written from a timm state dict, the release's file name)
FAMILIES: dict[str, tuple[str, Callable[[Tensors], object], str]] = {
    "dino": ("vit_small_patch8_224.dino", dict, "dino_deitsmall8_pretrain.pth"),
    "dinov2": ("vit_small_patch14_dinov2", dinov2_hub, "dinov2_vits14_pretrain.pth"),
    "dinov2-reg4": ("vit_small_patch14_reg4_dinov2", dinov2_hub, "dinov2_vits14_reg4_pretrain.pth"),
    "dinov3": ("vit_small_patch16_dinov3", lambda s: dinov3_release(s, 6), "dinov3_vits16_pretrain_lvd1689m.pth"),
    "dinov3-qkvb": ("vit_small_patch16_dinov3_qkvb", lambda s: dinov3_release(s, 6), "dinov3_vits16_qkvb.pth"),
    "mae": ("vit_base_patch16_224.mae", mae_release, "mae_pretrain_vit_base.pth"),
    "cropmae": ("vit_small_patch16_224", cropmae_checkpoint, "CropMAE_ImageNet.pth"),
    "timm-dinov2-reg4": ("vit_small_patch14_reg4_dinov2", dict, "model.safetensors"),
    "timm-dinov3": ("vit_small_patch16_dinov3", dict, "model.safetensors"),
}
#: an odd frame size, floored to the patch multiple on its way into the backbone
FRAME = np.random.default_rng(0).integers(0, 256, size=(75, 101, 3), dtype=np.uint8)


def source_model(arch: str) -> TimmBackbone:
    """A timm model with every parameter drawn here: tokens, norms, layer scales and biases too (timm starts many
    at 0 or 1e-5, where a mis-mapped one would go unnoticed). Built without timm's own (slow) draws."""
    source = build_timm_backbone(arch, for_loading=True)
    generator = torch.Generator().manual_seed(2)
    scales = ("gamma_1", "gamma_2", "gamma", "norm1.weight", "norm2.weight", "norm.weight")
    with torch.no_grad():
        for name, parameter in source.model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if parameter.ndim == 1 or "token" in name:
                parameter.copy_((1.0 if name.endswith(scales) else 0.0) + 0.1 * noise)
            else:
                parameter.copy_(0.02 * noise)
    return source


def write_release(family: str, folder: Path) -> tuple[TimmBackbone, Path]:
    """The family's source model and the file its release would be, written under ``folder``."""
    arch, layout, filename = FAMILIES[family]
    source = source_model(arch)
    path = folder / filename
    contents = layout({key: value.clone() for key, value in source.model.state_dict().items()})
    if filename.endswith(".safetensors"):
        save_file(contents, str(path))
    else:
        torch.save(contents, path)
    return source, path


def reference_features(source: TimmBackbone, inputs: torch.Tensor, block: int) -> torch.Tensor:
    """timm's own forward_features of the model cut after ``block``, patch tokens only, as (1, C, h, w); not
    through forward_intermediates, which ``ino`` uses."""
    model, blocks = source.model, source.model.blocks
    model.blocks = blocks[: block + 1]
    try:
        with torch.no_grad():
            tokens = model.forward_features(inputs)[:, model.num_prefix_tokens :]
    finally:
        model.blocks = blocks
    h, w = inputs.shape[-2] // source.patch_size, inputs.shape[-1] // source.patch_size
    return tokens.reshape(1, h, w, -1).permute(0, 3, 1, 2)


def features_and_reference(
    backbone: TimmBackbone, source: TimmBackbone, block: int
) -> tuple[tuple[int, int], torch.Tensor, torch.Tensor]:
    """The network input size, ``ino``'s features of :data:`FRAME` (native size, ``ino-davis`` otherwise) and
    timm's."""
    config = for_patch_size(resolve_config("ino-davis", short_side=None, feature_block=block), source.patch_size)
    frame = resize_frame(FRAME, config)
    ours = FeatureExtractor(backbone, config, device="cpu").batch([FRAME])
    reference = reference_features(source, normalise(torch.from_numpy(frame)[None], config), block)
    return (frame.shape[0], frame.shape[1]), ours, reference
