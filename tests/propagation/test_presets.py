"""Frame sizes for any patch size (issue 21) and the CRW and CropMAE presets (issue 20), docs/propagation.md."""

from __future__ import annotations

import pytest

from ino.errors import InoError
from ino.propagation.api import VideoPropagator
from ino.propagation.presets import PRESET_SOURCES, PRESETS, for_patch_size, grid_size, resolve_config, target_size


def test_a_short_side_off_the_patch_multiple_is_floored_to_it() -> None:
    # 122 is no multiple of 8: the network would get a 122-pixel side and timm's patch embedding asserts
    assert target_size(480, 854, resolve_config("ino-davis", short_side=122)) == (120, 216)
    assert target_size(854, 480, resolve_config("ino-davis", short_side=122)) == (216, 120)
    # 120 is a multiple of 8 but not of 16
    vit16 = for_patch_size(resolve_config("ino-davis", short_side=120), 16)
    assert target_size(480, 854, vit16) == (112, 208)
    assert grid_size(target_size(480, 854, vit16), vit16) == (7, 13)


def test_patch_14_keeps_the_protocols_aspect_and_floors_each_side() -> None:
    davis = for_patch_size(PRESETS["ino-davis"], 14)
    assert (davis.patch_size, davis.size_multiple) == (14, 8)
    assert target_size(480, 854, davis) == (476, 840)  # 854 -> 848 (x8) -> 840 (x14); 480 -> 476
    dino = for_patch_size(PRESETS["dino-davis"], 14)
    assert target_size(480, 854, dino) == (476, 826)  # 832 (x64) -> 826; lcm(64, 14) = 448 would give 448
    ytvos = for_patch_size(PRESETS["ino-ytvos"], 14)
    assert target_size(1080, 1920, ytvos) == (714, 1274)  # the 720x1280 override, floored
    assert target_size(495, 1001, ytvos) == (476, 994)


def test_patch_16_sizes_and_recorded_multiples_are_unchanged() -> None:
    davis, dino = for_patch_size(PRESETS["ino-davis"], 16), for_patch_size(PRESETS["dino-davis"], 16)
    assert (davis.size_multiple, dino.size_multiple) == (16, 64)
    assert target_size(480, 854, davis) == (480, 848)
    assert target_size(480, 854, dino) == (480, 832)
    assert target_size(480, 854, PRESETS["ino-davis"]) == (480, 848)


def test_a_short_side_below_one_patch_is_refused_naming_the_patch() -> None:
    with pytest.raises(InoError, match="short_side must be a positive number of pixels"):
        resolve_config("ino-davis", short_side=0)
    config = for_patch_size(resolve_config("ino-davis", short_side=10), 16)  # fine for patch 8, not for 16
    with pytest.raises(InoError, match="too small for patch size 16"):
        target_size(480, 854, config)


# --- the CRW and CropMAE presets (issue 20): values, size rules, geometry

REFERENCE_VALUES = {  # preset: topk, context, radius, temperature, patch (docs/evaluation.md, "Presets")
    "crw-davis": (10, 20, 12, 0.05, 8),
    "crw-jhmdb": (10, 7, 12, 0.05, 8),
    "crw-vip": (10, 4, 12, 0.05, 8),
    "cropmae-davis": (7, 20, 20, 0.7, 16),
    "cropmae-jhmdb": (7, 20, 20, 0.7, 16),
    "cropmae-vip": (10, 20, 20, 0.7, 16),
}


@pytest.mark.parametrize("name", REFERENCE_VALUES)
def test_the_reference_presets_hold_their_published_values_and_rule(name: str) -> None:
    config = PRESETS[name]
    assert (config.topk, config.n_last_frames, config.radius, config.temperature, config.patch_size) == (
        REFERENCE_VALUES[name]
    )
    assert (config.window, config.window_first_frame, config.pad_context, config.topk_ties) == (
        "disk",
        False,
        True,
        "exact",
    )
    assert (config.label_downsampling, config.mask_resize, config.resize_dtype) == ("cv2-linear", "cv2", "float32")
    assert config.std == (0.229, 0.224, 0.225) and config.mean == (0.485, 0.456, 0.406) and not config.norm_mask
    assert config.feature_block == -1  # the last block, whatever the depth
    assert ("issue #10" in PRESET_SOURCES[name]) == (name in ("crw-jhmdb", "crw-vip"))


def test_the_reference_presets_resize_as_their_code_does() -> None:
    assert target_size(240, 320, PRESETS["crw-jhmdb"]) == (320, 320)  # squashed
    assert target_size(240, 320, PRESETS["cropmae-jhmdb"]) == (320, 320)
    assert target_size(720, 1280, PRESETS["crw-vip"]) == (560, 560)
    assert target_size(480, 854, PRESETS["cropmae-davis"]) == (480, 880)
    assert target_size(480, 854, PRESETS["crw-davis"]) == (480, 848)  # native, floored to the patch
    vip = PRESETS["cropmae-vip"]
    assert target_size(720, 1280, vip) == (448, 880)  # int(720 * 880 / 1280) = 495 -> 448 (x64)
    assert target_size(1280, 720, vip) == (880, 448)
    assert target_size(500, 500, vip) == (880, 832)  # a square takes CropMAE's portrait branch
    assert target_size(1080, 1920, for_patch_size(vip, 14)) == (448, 868)  # 880 floored to the patch
    assert grid_size(target_size(720, 1280, vip), vip) == (28, 55)


def test_geometry_follows_the_size_rules() -> None:
    assert VideoPropagator(None, "cropmae-vip").geometry(720, 1280) == ((448, 880), (28, 55))
    assert VideoPropagator(None, "crw-jhmdb").geometry(240, 320) == ((320, 320), (40, 40))
    assert VideoPropagator(None, "cropmae-jhmdb").geometry(240, 320) == ((320, 320), (20, 20))


def test_a_size_rule_given_replaces_the_presets_and_two_at_once_are_refused() -> None:
    config = resolve_config("crw-jhmdb", short_side=240)
    assert (config.short_side, config.fixed_size, target_size(240, 320, config)) == (240, None, (240, 320))
    assert resolve_config("ino-davis", long_side=880).short_side is None
    assert target_size(240, 322, resolve_config("cropmae-davis", short_side=None)) == (240, 320)  # native (-1)
    assert resolve_config("ino-davis", fixed_size=(64, 96), short_side=None).fixed_size == (64, 96)
    with pytest.raises(InoError, match="short_side and fixed_size are alternative frame-size rules"):
        resolve_config("ino-davis", fixed_size=(64, 96), short_side=480)
    with pytest.raises(InoError, match="fixed_size must be a"):
        resolve_config("ino-davis", fixed_size=(0, 96))
    with pytest.raises(InoError, match="long_side must be a positive"):
        resolve_config("ino-davis", long_side=0)
