"""Any timm ViT as a propagation backbone: DINO, DINOv2 (with and without registers), DINOv3, MAE, SiamMAE, CropMAE.

``load_backbone(path, arch=<timm model name>)`` (``ino propagate --arch``) builds the timm model with
``pretrained=False`` (nothing is downloaded; on the meta device, without random draws, since the file fills it),
maps the file onto it with timm's own checkpoint filter for that model (Meta's DINOv2 and DINOv3 key names to
timm's, registers and storage tokens included) and loads it strictly. :meth:`TimmBackbone.patch_features` taps
one block through the final norm with timm's ``forward_intermediates``, which drops the class, register and storage
tokens: patch tokens only.

Position embeddings follow the model, as timm runs it for any input size (``dynamic_img_size``): learned ones
(DINO, DINOv2, MAE) are resampled bicubically with antialiasing, DINOv3's RoPE is computed for the grid. That is
not DINO's resampling recipe, so the released INO and DINO weights under our own architecture names
(:mod:`ino.models.vit`) give slightly different features than under timm's name for the same file.

Before timm's filter, what inference never uses is dropped: the pixel decoder of MAE-style checkpoints
(``decoder_*``) and the mask token of every family. DINOv3's key bias is masked to zero by a stored
``bias_mask``: the bias is taken through its mask, and a file whose biases are not zero is refused by a timm model
without qkv biases (use the ``_qkvb`` model). Its RoPE periods must be the model's. Everything else must then
match the model's keys and shapes exactly (:func:`ino.models.weights.load_backbone` lists what does not).
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Mapping

import torch
from timm.models.eva import Eva
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from ino.configs.schema import VIT_ARCHS
from ino.errors import InoError
from ino.models.vit import InoViT

#: timm modules whose models are ViTs with ``forward_intermediates`` that split off the prefix tokens
SUPPORTED_MODULES = ("vision_transformer", "eva")
#: MAE, SiamMAE and CropMAE checkpoints hold their pixel decoder next to the encoder
_DECODER_PREFIX = "decoder_"
_QKV_BIAS = ".attn.qkv.bias"
#: DINOv2's, timm's and DINOv3's names for register tokens
_REGISTER_KEYS = ("register_tokens", "reg_token", "storage_tokens")


class TimmBackbone(nn.Module):
    """A timm ViT with the interface propagation uses: ``patch_size``, ``patch_features``, ``arch``, ``source``.

    ``img_size`` is the size the stored position grid was built for (the file's, when loaded from one); any input
    whose sides are multiples of ``patch_size`` is accepted.
    """

    def __init__(self, model: VisionTransformer | Eva, arch: str) -> None:
        super().__init__()
        height, width = model.patch_embed.patch_size
        if height != width:
            raise InoError(f"backbone architecture {arch!r} has non-square {height}x{width} patches")
        self.model = model
        self.arch = arch
        self.patch_size = height
        self.img_size = model.patch_embed.img_size[0]
        # provenance, set by ino.models.weights.load_backbone
        self.source = f"timm {arch}"
        self.initialised_keys: tuple[str, ...] = ()

    def patch_features(self, x: torch.Tensor, block: int = 6) -> torch.Tensor:
        """Patch features (B, D, h, w) of transformer block ``block`` (0-based) through the final norm.

        Later blocks are not run; class, register and storage tokens are dropped.
        """
        depth = len(self.model.blocks)
        if not 0 <= block < depth:
            raise InoError(f"feature block {block} does not exist: the backbone has blocks 0..{depth - 1}")
        (features,) = self.model.forward_intermediates(
            x, indices=[block], norm=True, stop_early=True, output_fmt="NCHW", intermediates_only=True
        )
        return features


#: what ``load_backbone`` returns and propagation accepts
Backbone = InoViT | TimmBackbone


def check_timm_arch(name: str) -> None:
    """One line for a name that is neither ours nor a timm ViT (with close names); timm's registry decides."""
    import timm
    from timm.models import get_pretrained_cfg, model_entrypoint

    known = timm.is_model(name)
    if known and "." in name:  # is_model ignores the pretrained tag (vit_small_patch8_224.dino)
        try:
            get_pretrained_cfg(name)
        except RuntimeError:
            known = False
    if not known:
        names = [*VIT_ARCHS, *timm.list_models(module=SUPPORTED_MODULES, include_tags=True)]
        names += timm.list_models(module=SUPPORTED_MODULES)
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.75)
        hint = f"; close names: {', '.join(close)}" if close else ""
        raise InoError(
            f"unknown backbone architecture {name!r}: neither ours ({', '.join(VIT_ARCHS)}) nor a timm model{hint}"
        )
    module = model_entrypoint(name).__module__.rsplit(".", 1)[-1]
    if module not in SUPPORTED_MODULES:
        families = " and ".join(SUPPORTED_MODULES)
        raise InoError(
            f"backbone architecture {name!r} is timm's {module} model: only timm's ViTs ({families} models: "
            "DINO, DINOv2, DINOv3, MAE, ...) give patch features"
        )


def build_timm_backbone(
    arch: str, seed: int = 0, img_size: int | None = None, *, for_loading: bool = False
) -> TimmBackbone:
    """A timm ViT with seeded random weights (the caller's RNG is untouched), in eval mode.

    ``img_size`` sets the stored position grid (a file's, so that loading it resamples nothing); None keeps timm's.
    ``for_loading`` skips the random draws (seconds for a ViT-S on a CPU), as timm does for pretrained models:
    the model is built on the meta device, given uninitialised memory and its computed buffers (RoPE periods),
    and every parameter must then come from a strict load.
    """
    import timm
    from timm.models._manipulate import reinit_non_persistent_buffers

    check_timm_arch(arch)
    size = {} if img_size is None else {"img_size": img_size}

    def create(device: str) -> nn.Module:
        with torch.random.fork_rng(devices=[]), torch.device(device):
            torch.manual_seed(seed)
            return timm.create_model(arch, pretrained=False, num_classes=0, dynamic_img_size=True, **size)

    model = create("meta" if for_loading else "cpu")
    if for_loading and _rebuilds_its_buffers(model):
        model = model.to_empty(device="cpu")
        reinit_non_persistent_buffers(model)
    elif for_loading:  # a computed buffer timm cannot refill: pay for the random draws
        model = create("cpu")
    return TimmBackbone(model, arch).eval()


def _rebuilds_its_buffers(model: nn.Module) -> bool:
    """Whether every buffer a checkpoint does not hold belongs to a module that recomputes it (timm's hook)."""
    for module in model.modules():
        direct = {name for name, _ in module.named_buffers(recurse=False)}
        if direct - set(module.state_dict(keep_vars=True)) and not hasattr(module, "init_non_persistent_buffers"):
            return False
    return True


def stored_img_size(state: Mapping[str, torch.Tensor], path: object) -> int | None:
    """The pixel size of the file's square position grid (g*g entries, or 1 + g*g with the class token's).

    None for files without a learned position embedding (DINOv3's RoPE).
    """
    pos_embed, proj = state.get("pos_embed"), state.get("patch_embed.proj.weight")
    if pos_embed is None or proj is None or pos_embed.ndim != 3 or proj.ndim != 4:
        return None
    tokens = pos_embed.shape[1]
    for prefix in (0, 1):
        grid = math.isqrt(max(tokens - prefix, 0))
        if grid and grid * grid == tokens - prefix:
            return grid * proj.shape[-1]
    raise InoError(f"{path}: pos_embed has {tokens} positions, not a square grid (g*g or 1 + g*g)")


def to_timm_state(state: Mapping[str, torch.Tensor], backbone: TimmBackbone, path: object) -> dict[str, torch.Tensor]:
    """The file's backbone tensors in the timm model's key names, through timm's own checkpoint filter."""
    model, arch = backbone.model, backbone.arch
    state = {key: value for key, value in state.items() if not key.startswith(_DECODER_PREFIX)}
    proj = state.get("patch_embed.proj.weight")
    if proj is not None and proj.ndim == 4 and proj.shape[-1] != backbone.patch_size:
        raise InoError(
            f"{path}: the patch embedding is {proj.shape[-2]}x{proj.shape[-1]} but {arch} has patch size "
            f"{backbone.patch_size}: choose a model with patch {proj.shape[-1]}"
        )
    _check_registers(state, backbone, path)
    if "storage_tokens" in state:  # Meta's DINOv3 layout
        state = _fold_dinov3(state, backbone, path)
    checkpoint_filter_fn = sys.modules[type(model).__module__].checkpoint_filter_fn
    try:
        state = checkpoint_filter_fn(state, model)
    except (RuntimeError, ValueError, KeyError, AssertionError) as error:
        raise InoError(f"{path}: timm cannot map this file onto {arch} ({type(error).__name__}: {error})") from error
    state.pop("mask_token", None)  # DINOv2 / DINOv3 masked-image modelling; MAE's is the decoder's
    return state


def _check_registers(state: Mapping[str, torch.Tensor], backbone: TimmBackbone, path: object) -> None:
    """Register (storage) tokens in the file and the model must agree; timm's filter would fail obscurely."""
    stored = next((state[key] for key in _REGISTER_KEYS if key in state), None)
    in_file = 0 if stored is None or stored.ndim != 3 else stored.shape[1]
    tokens = getattr(backbone.model, "reg_token", None)
    in_model = 0 if tokens is None else tokens.shape[1]
    if in_file != in_model:
        raise InoError(
            f"{path}: holds {in_file} register tokens but {backbone.arch} has {in_model}: choose the model with "
            f"{in_file} (DINOv2: the _reg4 names)"
        )


def _fold_dinov3(state: dict[str, torch.Tensor], backbone: TimmBackbone, path: object) -> dict[str, torch.Tensor]:
    """Meta's DINOv3 tensors that timm's filter would drop unchecked: RoPE periods and masked qkv biases."""
    model, arch = backbone.model, backbone.arch
    state = dict(state)
    periods = state.pop("rope_embed.periods", None)
    expected = getattr(getattr(model, "rope", None), "periods", None)
    if periods is not None and expected is not None and not _same(periods, expected):
        raise InoError(f"{path}: rope_embed.periods differ from {arch}'s (another RoPE base or head width)")
    parameters = set(model.state_dict())
    for key in [key for key in state if key.endswith(_QKV_BIAS)]:
        mask = state.pop(f"{key}_mask", None)
        bias = state[key] if mask is None else state[key] * mask.to(state[key].dtype)
        if not torch.isfinite(bias).all():
            raise InoError(f"{path}: {key} taken through its bias_mask is not finite")
        if key.replace(_QKV_BIAS, ".attn.q_bias") in parameters:
            if bias.chunk(3)[1].any():
                raise InoError(f"{path}: {key} has a non-zero key bias, which {arch} cannot hold")
            state[key] = bias
        elif bias.any():
            raise InoError(f"{path}: {key} holds non-zero biases but {arch} has no qkv bias: use {_with_bias(arch)}")
        else:
            del state[key]
    return state


def _with_bias(arch: str) -> str:
    """timm's name for the same DINOv3 with q/v biases (``vit_small_patch16_dinov3`` -> ``..._qkvb``)."""
    import timm

    name = arch.split(".")[0] + "_qkvb"
    return name if timm.is_model(name) else "a timm model with qkv biases"


def _same(stored: torch.Tensor, expected: torch.Tensor) -> bool:
    # Meta's files hold the periods in bfloat16 (8 significant bits); consecutive periods differ by a third
    return stored.shape == expected.shape and torch.allclose(stored.float(), expected.float(), rtol=2**-7)
