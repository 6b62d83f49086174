"""Frame sizes for any patch size: every side is floored to the patch multiple (issue 21, docs/propagation.md)."""

from __future__ import annotations

import pytest

from ino.errors import InoError
from ino.propagation.presets import PRESETS, for_patch_size, grid_size, resolve_config, target_size


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
