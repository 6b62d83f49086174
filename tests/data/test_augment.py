"""Multi-crop augmentation (docs/method.md §2): shapes, faithful vs paper globals, scales, independence, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from ino.configs.schema import AugmentConfig
from ino.data.augment import MultiCropAugment
from ino.errors import InoError

NO_COLOUR = {"flip_p": 0.0, "jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0}


def pixels(crops: torch.Tensor, config: AugmentConfig) -> np.ndarray:
    """Normalised crops (..., 3, h, w) back to 0-255 values, channels last."""
    mean = torch.tensor(config.mean).view(3, 1, 1)
    std = torch.tensor(config.std).view(3, 1, 1)
    return ((crops * std + mean) * 255).movedim(-3, -1).numpy()


def coordinate_frames(n: int, height: int, width: int) -> np.ndarray:
    """Frames whose red value is the column and green value the row (needs both sides <= 256)."""
    y, x = np.mgrid[:height, :width]
    frame = np.stack([x, y, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    return np.repeat(frame[None], n, axis=0)


def crop_box(crop: np.ndarray) -> tuple[float, float, float, float, bool]:
    """(x0, y0, w, h, flipped) of the input box a resized crop (s, s, 3) of a coordinate frame was taken from.

    A resize maps output pixel i to input coordinate x0 + (i + 0.5) w / s - 0.5 and reproduces a linear ramp away
    from the borders, so a line fitted to the interior pixels gives the box without the border effects.
    """
    s = crop.shape[0]
    inner = np.arange(s // 8, s - s // 8)
    kx, cx = np.polyfit(inner, crop[s // 2, inner, 0], 1)
    ky, cy = np.polyfit(inner, crop[inner, s // 2, 1], 1)
    flipped = kx < 0
    if flipped:  # the flipped crop's pixel i is the unflipped one's pixel s - 1 - i
        kx, cx = -kx, cx - kx * (s - 1)
    return cx - 0.5 * kx + 0.5, cy - 0.5 * ky + 0.5, kx * s, ky * s, bool(flipped)


@pytest.mark.parametrize(
    ("clip_len", "n_local", "global_size", "local_size", "hw"),
    [(4, 8, 224, 64, (120, 160)), (2, 3, 96, 32, (50, 70)), (1, 1, 32, 16, (40, 40)), (6, 10, 64, 24, (90, 60))],
)
def test_shapes_and_dtypes(clip_len: int, n_local: int, global_size: int, local_size: int, hw: tuple) -> None:
    config = AugmentConfig(global_size=global_size, local_size=local_size, n_local=n_local)
    frames = np.random.default_rng(0).integers(0, 256, (clip_len, *hw, 3), dtype=np.uint8)
    globals_, locals_ = MultiCropAugment(config)(frames)
    assert globals_.shape == (clip_len, 3, global_size, global_size) and globals_.dtype == torch.float32
    assert locals_.shape == (clip_len, n_local, 3, local_size, local_size) and locals_.dtype == torch.float32
    assert torch.isfinite(globals_).all() and torch.isfinite(locals_).all()


def test_input_layouts_agree_and_readonly_arrays_work() -> None:
    frames = np.random.default_rng(1).integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
    aug = MultiCropAugment(AugmentConfig(global_size=32, local_size=16, n_local=2))
    readonly = frames.copy()
    readonly.flags.writeable = False
    inputs = [frames, readonly, torch.from_numpy(frames), torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()]
    outputs = []
    for x in inputs:
        torch.manual_seed(5)
        outputs.append(aug(x))
    for g, loc in outputs[1:]:
        assert torch.equal(g, outputs[0][0]) and torch.equal(loc, outputs[0][1])


def test_faithful_global_crops_keep_the_colour_while_local_crops_change_it() -> None:
    config = AugmentConfig(global_size=32, local_size=16)
    colour = np.array([200, 30, 90], dtype=np.uint8)
    frames = np.broadcast_to(colour, (16, 48, 64, 3)).copy()
    torch.manual_seed(0)
    globals_, locals_ = MultiCropAugment(config)(frames)
    expected = (torch.tensor(colour / 255, dtype=torch.float32) - torch.tensor(config.mean)) / torch.tensor(config.std)
    torch.testing.assert_close(globals_, expected.view(1, 3, 1, 1).expand_as(globals_), rtol=0, atol=1e-6)
    local_colours = pixels(locals_, config).mean(axis=(2, 3)).reshape(-1, 3)
    changed = np.abs(local_colours - colour).max(axis=1) > 2
    assert 0.5 < changed.mean() < 1.0  # jitter (p 0.8) or grayscale (p 0.2) changes most crops, not all
    assert local_colours.std(axis=0).min() > 5


def test_paper_global_crops_are_flipped_and_jittered() -> None:
    n = 40
    faithful, paper = AugmentConfig(global_size=48), AugmentConfig(global_size=48, global_aug="paper")
    frames = coordinate_frames(n, 64, 64)
    flips = {}
    for config in (faithful, paper):
        torch.manual_seed(1)
        crops = pixels(MultiCropAugment(config)(frames)[0], config)
        flips[config.global_aug] = sum(crop_box(crop)[4] for crop in crops)
    assert flips["none"] == 0 and 0.25 * n < flips["paper"] < 0.75 * n

    colour = np.array([60, 160, 220], dtype=np.uint8)
    constant = np.broadcast_to(colour, (n, 40, 40, 3)).copy()
    torch.manual_seed(2)
    colours = pixels(MultiCropAugment(paper)(constant)[0], paper).mean(axis=(1, 2))
    jittered = np.abs(colours - colour).max(axis=1) > 2
    assert 0.6 * n < jittered.sum() < n  # expected 0.8 n


def test_every_frame_and_crop_gets_its_own_parameters() -> None:
    texture = np.random.default_rng(2).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    frames = np.repeat(texture[None], 4, axis=0)
    globals_, locals_ = MultiCropAugment(AugmentConfig(global_size=48, local_size=16))(frames)
    for crops in (globals_, locals_.flatten(0, 1)):
        assert not any(torch.equal(crops[i], crops[j]) for i in range(len(crops)) for j in range(i))


def test_reproducible_under_manual_seed() -> None:
    frames = np.random.default_rng(3).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    aug = MultiCropAugment(AugmentConfig(global_size=32, local_size=16, n_local=4, global_aug="paper"))
    runs = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        runs.append(aug(frames))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))
    assert not torch.equal(runs[0][1], runs[2][1]) and not torch.equal(runs[0][0], runs[2][0])


def test_global_crop_area_fraction_follows_the_scale() -> None:
    config = AugmentConfig(n_local=1, local_size=8)
    frames = coordinate_frames(120, 256, 256)
    torch.manual_seed(4)
    crops = pixels(MultiCropAugment(config)(frames)[0], config)
    boxes = np.array([crop_box(crop)[:4] for crop in crops])
    area = boxes[:, 2] * boxes[:, 3] / 256**2
    # torchvision's fallback (10 failed tries) is the whole square frame; it is rare here (~0.2 % per crop)
    fallback = np.abs(area - 1) < 0.01
    assert fallback.sum() <= 2
    area, boxes = area[~fallback], boxes[~fallback]
    assert area.min() > 0.79 and area.max() < 0.96
    assert area.min() < 0.83 and area.max() > 0.92  # spread over the range, not one fixed box
    ratio = boxes[:, 2] / boxes[:, 3]
    assert ratio.min() > 0.74 and ratio.max() < 1.34
    assert (boxes[:, :2] > -0.5).all() and (boxes[:, :2] + boxes[:, 2:] < 256.5).all()


def test_global_crops_of_wide_frames_are_the_centre_4_by_3_crop() -> None:
    # At 16:9 no try fits area >= 0.8 with ratio <= 4/3: torchvision falls back to the ratio-clamped centre crop
    config = AugmentConfig(global_size=96, n_local=1, local_size=8)
    torch.manual_seed(5)
    crops = pixels(MultiCropAugment(config)(coordinate_frames(10, 90, 160))[0], config)
    for crop in crops:
        np.testing.assert_allclose(crop_box(crop)[:4], (20, 0, 120, 90), atol=0.3)


@pytest.mark.parametrize("s", [0.4, 0.8])
def test_local_crop_area_fraction_follows_the_threshold(s: float) -> None:
    config = AugmentConfig.with_threshold(s, global_size=16, n_local=8, **NO_COLOUR)
    assert config.local_scale == (0.05, s) and config.global_scale == (s, 0.95)
    torch.manual_seed(6)
    crops = pixels(MultiCropAugment(config)(coordinate_frames(25, 256, 256))[1], config).reshape(-1, 64, 64, 3)
    boxes = np.array([crop_box(crop)[:4] for crop in crops])
    area = boxes[:, 2] * boxes[:, 3] / 256**2
    assert area.min() > 0.045 and area.max() < s + 0.01
    assert area.min() < 0.1 and area.max() > s - 0.15


def test_local_grayscale_probability() -> None:
    config = AugmentConfig(global_size=16, local_size=16)
    texture = np.random.default_rng(4).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    torch.manual_seed(7)
    locals_ = pixels(MultiCropAugment(config)(np.repeat(texture[None], 50, axis=0))[1], config)
    gray = np.ptp(locals_, axis=-1).max(axis=(-1, -2)) < 1e-3
    assert 0.12 < gray.mean() < 0.28  # 400 crops, expected 0.2


def test_blur_sigma_is_the_pil_radius() -> None:
    # Full-frame crop at its own size (an identity resize) with blur only: the local crop is the blurred frame
    image = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    config = AugmentConfig(
        global_size=16, local_size=64, n_local=1, local_scale=(1.0, 1.0), ratio=(1.0, 1.0),
        **{**NO_COLOUR, "blur_p": 1.0}, blur_sigma=(2.0, 2.0),
    )  # fmt: skip
    blurred = pixels(MultiCropAugment(config)(image[None])[1][0, 0], config)
    for radius, near in ((2.0, True), (1.0, False)):
        reference = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)), dtype=np.float64)
        assert (np.abs(blurred - reference).mean() < 1.5) == near


def test_config_lists_become_tuples() -> None:
    config = AugmentConfig(global_scale=[0.6, 0.95], jitter=[0.4, 0.4, 0.2, 0.1])  # type: ignore[arg-type]
    assert config.global_scale == (0.6, 0.95) and isinstance(config.jitter, tuple)
    assert hash(config) == hash(AugmentConfig(global_scale=(0.6, 0.95)))


@pytest.mark.parametrize(
    "bad",
    [
        {"global_scale": (0.95, 0.8)},
        {"local_scale": (0.0, 0.5)},
        {"local_scale": (0.05, 1.2)},
        {"ratio": (4 / 3, 3 / 4)},
        {"flip_p": 1.5},
        {"blur_p": -0.1},
        {"jitter": (0.4, 0.4, 0.2, 0.7)},
        {"jitter": (0.4, 0.4)},
        {"jitter": (-0.1, 0.4, 0.2, 0.1)},
        {"blur_sigma": (0.0, 2.0)},
        {"std": (0.2, 0.0, 0.2)},
        {"mean": (0.5, 0.5)},
        {"global_aug": "both"},
        {"n_local": 0},
        {"global_size": 0},
        {"local_size": 64.0},
        {"global_scale": ("a", "b")},
    ],
)
def test_bad_config_raises(bad: dict) -> None:
    with pytest.raises(InoError, match="augmentation configuration"):
        AugmentConfig(**bad)


def test_bad_threshold_raises() -> None:
    with pytest.raises(InoError):
        AugmentConfig.with_threshold(0.97)


@pytest.mark.parametrize(
    "frames",
    [
        np.zeros((2, 32, 32, 3), dtype=np.float32),
        np.zeros((32, 32, 3), dtype=np.uint8),
        np.zeros((2, 3, 32, 32), dtype=np.uint8),  # numpy input is always channels last
        torch.zeros(2, 3, 32, 3, dtype=torch.uint8),  # reads both ways
        torch.zeros(2, 4, 32, 32, dtype=torch.uint8),
        torch.zeros(0, 32, 32, 3, dtype=torch.uint8),
        [np.zeros((32, 32, 3), dtype=np.uint8)],
    ],
)
def test_bad_frames_raise(frames: object) -> None:
    with pytest.raises(InoError):
        MultiCropAugment()(frames)  # type: ignore[arg-type]
