"""Joints <-> label maps on the feature grid: the references' drawing and decoding, and exact round trips where the
definitions make them exact."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ino.data.jhmdb import N_JOINTS
from ino.errors import InoError
from ino.propagation.keypoints import (
    KEYPOINT_PRESETS,
    GridGeometry,
    KeypointSpec,
    decode_grid,
    decode_joints,
    encode_joints,
)

E2, E4, E8 = math.exp(-2), math.exp(-4), math.exp(-8)
IDENTITY = GridGeometry((40, 40), (40, 40), 1)  # one pixel per cell: grid coordinates = pixel coordinates
CRW = GridGeometry(original_hw=(240, 320), resized_hw=(320, 320), stride=8)  # JHMDB frame, CRW's 40x40 grid
CROPMAE = GridGeometry(original_hw=(240, 320), resized_hw=(320, 320), stride=16)  # ViT-S/16's 20x20 grid


def one_joint(x: float, y: float) -> np.ndarray:
    joints = np.full((N_JOINTS, 2), np.nan)
    joints[0] = (x, y)
    return joints


def test_reference_patch_values_and_background() -> None:
    maps = encode_joints(one_joint(10.0, 20.0), IDENTITY, KEYPOINT_PRESETS["crw"])
    assert maps.shape == (16, 40, 40) and maps.dtype == np.float32
    patch = maps[1, 18:22, 8:12].astype(np.float64)  # rows 18..21, columns 8..11: the 4x4 patch, peak at (2, 2)
    expected = np.exp(-((np.arange(4)[None] - 2.0) ** 2 + (np.arange(4)[:, None] - 2.0) ** 2) / 0.5)
    np.testing.assert_allclose(patch, expected, rtol=1e-6)
    assert maps[1].sum() == pytest.approx(expected.sum(), rel=1e-6)  # nothing outside the patch
    assert np.allclose(expected[0, 2], E8) and np.allclose(expected[1, 2], E2) and np.allclose(expected[1, 1], E4)
    np.testing.assert_array_equal(maps[0], (maps[1] == 0).astype(np.float32))  # hard background
    assert not maps[2:].any()  # NaN joints draw nothing


@pytest.mark.parametrize(
    ("x", "peak", "columns"),
    [
        (10.0, 10, [8, 9, 10, 11]),
        (10.49, 10, [8, 9, 10, 11]),
        (10.5, 11, [9, 10, 11, 12]),  # half up
        (1.0, 2, [0, 1, 2]),  # int() truncates toward zero near the border: one cell right
        (0.2, 1, [0, 1]),
        (-1.0, 0, [0]),
        (-1.5, None, [0]),  # only a tail reaches column 0
        (-1.6, None, []),
        (39.0, 39, [37, 38, 39]),
        (40.4, None, [38, 39]),
        (41.4, None, [39]),
        (41.5, None, []),
    ],
)
def test_reference_drawing_near_the_borders(x: float, peak: int | None, columns: list[int]) -> None:
    row = encode_joints(one_joint(x, 20.0), IDENTITY, KEYPOINT_PRESETS["crw"])[1, 20]
    assert np.flatnonzero(row).tolist() == columns
    if peak is not None:
        assert row[peak] == 1.0


def test_exact_drawing_is_centred_on_the_true_position() -> None:
    maps = encode_joints(one_joint(10.3, 20.0), IDENTITY, KeypointSpec(drawing="exact"))
    row = maps[1, 20].astype(np.float64)
    assert np.flatnonzero(row).tolist() == [9, 10, 11]  # within 3 sigma = 1.5 cells
    np.testing.assert_allclose(row[9:12], np.exp(-((np.arange(9, 12) - 10.3) ** 2) / 0.5), rtol=1e-6)


@pytest.mark.parametrize("drawing", ["reference", "exact"])
@pytest.mark.parametrize("topk", [1, 5])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_on_grid_joints_round_trip_exactly(topk: int, drawing: str, data: st.DataObject) -> None:
    """A joint on a cell index, at least 2 cells inside: its patch is symmetric around the peak up to distance 1,
    so a top-1 or top-5 decode returns it exactly, in grid and in pixel coordinates, under either convention."""
    centred = GridGeometry((240, 320), (320, 320), 8, "centred")
    for geometry in (IDENTITY, CRW, CROPMAE, centred):
        gh, gw = geometry.grid_hw
        cells = data.draw(st.lists(st.tuples(st.integers(2, gw - 2), st.integers(2, gh - 2)), min_size=15, max_size=15))
        grid = np.array(cells, dtype=np.float64)
        pixels = geometry.to_pixels(grid)
        spec = KeypointSpec(drawing=drawing, topk=topk)
        np.testing.assert_allclose(geometry.to_grid(pixels), grid, atol=1e-12)
        decoded = decode_joints(encode_joints(pixels, geometry, spec), geometry, spec)
        np.testing.assert_allclose(decoded, pixels, atol=1e-9)


def test_crw_top3_takes_two_of_four_tied_neighbours() -> None:
    """On a clean Gaussian the four e^-2 neighbours tie; top-3 keeps the two of lowest row-major index (up, left),
    which is what torch.topk returns on CPU: the decode is biased by e^-2 / (1 + 2 e^-2) cells up and left."""
    maps = encode_joints(one_joint(10.0, 20.0), IDENTITY, KEYPOINT_PRESETS["crw"])
    bias = E2 / (1 + 2 * E2)
    np.testing.assert_allclose(decode_grid(maps, 3)[0], [10 - bias, 20 - bias], atol=1e-6)
    _, indices = torch.topk(torch.from_numpy(maps[1]).flatten(), 3)
    assert sorted(indices.tolist()) == sorted([20 * 40 + 10, 19 * 40 + 10, 20 * 40 + 9])


def test_decode_of_soft_maps_matches_the_definition() -> None:
    rng = np.random.default_rng(4)
    maps = rng.random((16, 6, 7)).astype(np.float32)
    maps[5] = 0  # an empty channel is lost
    decoded = decode_grid(torch.from_numpy(maps), 4)
    for joint in range(N_JOINTS):
        channel = maps[joint + 1].astype(np.float64).ravel()
        if not channel.any():
            assert np.isnan(decoded[joint]).all()
            continue
        best = sorted(range(channel.size), key=lambda i: -channel[i])[:4]
        weights = channel[best] / channel[best].sum()
        columns, rows = [i % 7 for i in best], [i // 7 for i in best]
        expected = [float(np.dot(weights, columns)), float(np.dot(weights, rows))]
        np.testing.assert_allclose(decoded[joint], expected, atol=1e-12)


def test_geometry_conventions() -> None:
    """Reference: pixel 0 on cell 0, x_g = x * grid / W; centred: pixel centres on cell centres."""
    np.testing.assert_allclose(CRW.to_grid([[0.0, 0.0], [319.0, 239.0]]), [[0, 0], [39.875, 39.833333333]])
    centred = GridGeometry((240, 320), (320, 320), 8, "centred")
    np.testing.assert_allclose(centred.to_grid([[3.5, 2.5]]), [[0.0, 0.0]], atol=1e-12)  # cell 0 covers 0..7 px
    points = np.random.default_rng(1).uniform(-20, 340, (50, 2))
    for geometry in (CRW, CROPMAE, centred, GridGeometry((37, 53), (41, 67), 4, "centred")):
        np.testing.assert_allclose(geometry.to_pixels(geometry.to_grid(points)), points, atol=1e-9)
    assert GridGeometry((240, 320), (321, 320), 8).grid_hw == (41, 40)  # ceil, as the references' label maps


def test_bad_settings_are_one_clear_error() -> None:
    with pytest.raises(InoError, match="sigma must be > 0"):
        KeypointSpec(sigma=0)
    with pytest.raises(InoError, match="drawing must be one of"):
        KeypointSpec(drawing="blur")
    with pytest.raises(InoError, match="convention must be one of"):
        GridGeometry((1, 1), (1, 1), 1, "corner")
    with pytest.raises(ValueError, match="grid is"):
        decode_joints(np.zeros((16, 3, 3)), CRW, KEYPOINT_PRESETS["crw"])
