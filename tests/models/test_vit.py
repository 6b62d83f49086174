"""The backbone: geometry, mask token, block-7 features and DINO's exact position-embedding resampling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ino.errors import InoError
from ino.models.vit import build_vit


def dino_interpolate(pos_embed: torch.Tensor, patch_size: int, height: int, width: int) -> torch.Tensor:
    """DINO's ``interpolate_pos_encoding``, written out plainly (input pixels, square stored grid)."""
    n_stored = pos_embed.shape[1] - 1
    n_wanted = (height // patch_size) * (width // patch_size)
    if n_wanted == n_stored and height == width:
        return pos_embed
    side = int(math.sqrt(n_stored))
    dim = pos_embed.shape[-1]
    h0 = height // patch_size + 0.1
    w0 = width // patch_size + 0.1
    patch_pos = pos_embed[:, 1:].reshape(1, side, side, dim).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(patch_pos, scale_factor=(h0 / side, w0 / side), mode="bicubic")
    patch_pos = patch_pos.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((pos_embed[:, 0].unsqueeze(0), patch_pos), dim=1)


@pytest.fixture(scope="module")
def vit_s8():
    torch.manual_seed(0)
    return build_vit("vit_small", 8).eval()


def test_geometry_matches_the_released_model(vit_s8):
    assert vit_s8.pos_embed.shape == (1, 65, 384)
    assert vit_s8.mask_token.shape == (1, 1, 384)
    assert (vit_s8.arch, vit_s8.patch_size, vit_s8.embed_dim, vit_s8.img_size) == ("vit_small", 8, 384, 64)
    assert len(vit_s8.blocks) == 12 and vit_s8.blocks[0].attn.num_heads == 6
    assert vit_s8.norm.eps == 1e-6 and vit_s8.blocks[0].norm1.eps == 1e-6
    assert vit_s8.blocks[0].attn.qkv.bias is not None
    keys = set(vit_s8.state_dict())
    assert len(keys) == 151 and "mask_token" in keys and "blocks.11.mlp.fc2.weight" in keys
    assert not any(key.startswith(("head", "fc_norm")) for key in keys)
    tiny = build_vit("vit_tiny", 16, img_size=32)
    assert tiny.pos_embed.shape == (1, 5, 192)


def test_init_follows_dino():
    torch.manual_seed(0)
    model = build_vit("vit_tiny", 16)
    for tensor in (model.cls_token, model.mask_token, model.pos_embed):
        assert 0.01 < tensor.std().item() < 0.03
    assert torch.all(model.blocks[3].attn.proj.bias == 0)
    assert torch.all(model.norm.weight == 1) and torch.all(model.norm.bias == 0)


def test_drop_path_is_linear_over_blocks():
    model = build_vit("vit_tiny", 16, drop_path_rate=0.1)
    rates = [getattr(block.drop_path1, "drop_prob", 0.0) for block in model.blocks]  # block 0: Identity
    assert rates == pytest.approx(torch.linspace(0, 0.1, 12).tolist())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"arch": "vit_huge"}, "unknown backbone"),
        ({"patch_size": 14}, "patch size"),
        ({"img_size": 60}, "img_size"),
    ],
)
def test_bad_geometry_is_rejected(kwargs, match):
    with pytest.raises(InoError, match=match):
        build_vit(**kwargs)


def test_forward_tokens_shapes_on_non_square_input(vit_s8):
    with torch.no_grad():
        cls, patches = vit_s8.forward_tokens(torch.randn(2, 3, 48, 80))
    assert cls.shape == (2, 384) and patches.shape == (2, 60, 384)


def _block0_input(model, images, mask=None):
    captured = []
    handle = model.blocks[0].register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
    try:
        with torch.no_grad():
            model.forward_tokens(images, mask)
    finally:
        handle.remove()
    return captured[0]


def test_mask_token_replaces_exactly_the_masked_patches(vit_s8):
    images = torch.randn(2, 3, 32, 48)
    mask = torch.zeros(2, 24, dtype=torch.bool)
    mask[0, [0, 5, 23]] = True
    mask[1, 7] = True
    plain = _block0_input(vit_s8, images)
    masked = _block0_input(vit_s8, images, mask)
    pos = vit_s8.interpolated_pos_embed(4, 6)
    full = torch.cat([torch.zeros(2, 1, dtype=torch.bool), mask], dim=1)
    assert torch.equal(masked[~full], plain[~full])
    expected = (vit_s8.mask_token + pos).expand(2, -1, -1)[full]
    assert torch.equal(masked[full], expected)


def test_empty_mask_is_a_no_op_and_gives_no_gradient():
    torch.manual_seed(0)
    model = build_vit("vit_tiny", 16, img_size=32)
    images = torch.randn(1, 3, 32, 32)
    cls, patches = model.forward_tokens(images, torch.zeros(1, 4, dtype=torch.bool))
    ref_cls, ref_patches = model.forward_tokens(images)
    assert torch.equal(cls, ref_cls) and torch.equal(patches, ref_patches)
    (cls.sum() + patches.sum()).backward()
    assert model.mask_token.grad is None and model.pos_embed.grad is not None
    cls, _ = model.forward_tokens(images, torch.tensor([[True, False, False, False]]))
    cls.sum().backward()
    assert model.mask_token.grad is not None


def test_patch_features_are_block_7_through_the_final_norm(vit_s8):
    images = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        features = vit_s8.patch_features(images, block=6)
        tokens = vit_s8.patch_embed(images)
        tokens = vit_s8._pos_embed(tokens)
        for block in list(vit_s8.blocks)[:7]:
            tokens = block(tokens)
        manual = vit_s8.norm(tokens)[:, 1:].reshape(1, 5, 7, 384).permute(0, 3, 1, 2)
        (timm,) = vit_s8.forward_intermediates(
            images, indices=[6], norm=True, output_fmt="NCHW", intermediates_only=True
        )
    assert features.shape == (1, 384, 5, 7)
    assert torch.equal(features, manual)
    assert torch.equal(features, timm)


def test_patch_features_stop_early(vit_s8):
    calls = []
    handle = vit_s8.blocks[7].register_forward_hook(lambda *_: calls.append(1))
    try:
        with torch.no_grad():
            vit_s8.patch_features(torch.randn(1, 3, 16, 16), block=6)
    finally:
        handle.remove()
    assert calls == []
    with pytest.raises(InoError, match="block 12"):
        vit_s8.patch_features(torch.randn(1, 3, 16, 16), block=12)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (224, 224), (480, 848), (72, 64), (32, 128)])
def test_position_embedding_matches_dino(vit_s8, height, width):
    ours = vit_s8.interpolated_pos_embed(height // 8, width // 8)
    assert torch.equal(ours, dino_interpolate(vit_s8.pos_embed, 8, height, width))


def test_timm_resampling_would_differ(vit_s8):
    """Pins why we resample ourselves: timm's stock path (antialiased, size-based) gives other values."""
    from timm.layers import resample_abs_pos_embed

    timm_pos = resample_abs_pos_embed(vit_s8.pos_embed, [28, 28], [8, 8], num_prefix_tokens=1)
    assert not torch.allclose(timm_pos, vit_s8.interpolated_pos_embed(28, 28), atol=1e-4)


def test_interpolation_cache_is_used_and_never_stale():
    torch.manual_seed(0)
    model = build_vit("vit_tiny", 8).eval()
    other = build_vit("vit_tiny", 8)
    with torch.no_grad():
        first = model.interpolated_pos_embed(10, 12)
        assert model.interpolated_pos_embed(10, 12) is first
        model.load_state_dict(other.state_dict())
        assert torch.equal(model.interpolated_pos_embed(10, 12), dino_interpolate(other.pos_embed, 8, 80, 96))
        model.pos_embed.data.mul_(2)  # an EMA-style update that bypasses the version counter
        assert torch.equal(model.interpolated_pos_embed(10, 12), dino_interpolate(model.pos_embed, 8, 80, 96))
    with_grad = model.interpolated_pos_embed(10, 12)
    assert with_grad.requires_grad and with_grad.grad_fn is not None
    model.train()
    with torch.no_grad():
        assert model.interpolated_pos_embed(10, 12) is not model.interpolated_pos_embed(10, 12)
