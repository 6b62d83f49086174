"""Per-frame J and F against the plain reference (tests/reference_metrics.py) to 1e-12."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ino.evaluation.metrics import (
    _count_matched,
    boundary_map,
    boundary_tolerance,
    dilate_disk,
    disk,
    f_measure,
    frame_scores,
    jaccard,
    statistics,
)
from support.reference_metrics import (
    boundary_loops,
    boundary_vectorised,
    reference_f,
    reference_frame,
    reference_j,
    reference_statistics,
)


def _check(gt: np.ndarray, pred: np.ndarray, n_objects: int, loops: bool = True) -> None:
    j, f = frame_scores(gt.astype(np.uint8), pred.astype(np.uint8), n_objects)
    ref_j, ref_f = reference_frame(gt, pred, n_objects, loops=loops)
    np.testing.assert_allclose(j, ref_j, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f, ref_f, rtol=0, atol=1e-12)


def _blank(height: int, width: int) -> np.ndarray:
    return np.zeros((height, width), dtype=np.uint8)


def test_tolerance_and_disk_follow_the_spec():
    assert boundary_tolerance(480, 854) == 8
    assert boundary_tolerance(480, 910) == 9
    kernel = disk(3)
    ys, xs = np.mgrid[-3:4, -3:4]
    np.testing.assert_array_equal(kernel, (xs**2 + ys**2 <= 9).astype(np.uint8))


def test_empty_against_empty_scores_one():
    _check(_blank(9, 13), _blank(9, 13), 2)
    j, f = frame_scores(_blank(9, 13), _blank(9, 13), 2)
    assert list(j) == [1.0, 1.0] and list(f) == [1.0, 1.0]


def test_empty_prediction_of_an_object_scores_zero():
    gt = _blank(20, 31)
    gt[5:9, 7:15] = 1
    j, f = frame_scores(gt, _blank(20, 31), 1)
    assert j[0] == 0.0 and f[0] == 0.0
    _check(gt, _blank(20, 31), 1)


def test_full_frame_masks_have_no_boundary():
    full = np.ones((11, 17), dtype=np.uint8)
    assert not boundary_map(full).any()
    _check(full, full, 1)
    _check(full, _blank(11, 17), 1)
    _check(_blank(11, 17), full, 1)


def test_one_pixel_objects_anywhere_including_corners():
    for y, x in [(0, 0), (0, 12), (8, 0), (8, 12), (4, 6)]:
        gt = _blank(9, 13)
        gt[y, x] = 1
        for py, px in [(y, x), (4, 7), (8, 12)]:
            pred = _blank(9, 13)
            pred[py, px] = 1
            _check(gt, pred, 1)


def test_objects_touching_borders_with_odd_sizes():
    gt = _blank(37, 53)
    gt[0:10, 0:20] = 1
    gt[30:, 40:] = 2
    gt[15:25, 52] = 3
    pred = _blank(37, 53)
    pred[0:12, 2:20] = 1
    pred[28:, 44:] = 2
    pred[14:22, 50:] = 3
    _check(gt, pred, 3)


def test_several_overlapping_objects_and_a_missing_one():
    gt = _blank(45, 61)
    gt[5:30, 5:30] = 1
    gt[20:40, 25:55] = 2
    gt[2:8, 40:58] = 3
    pred = np.roll(gt, (2, -3), axis=(0, 1))
    pred[pred == 3] = 0
    _check(gt, pred, 3)


def test_boundary_map_vectorised_reference_matches_loops():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((int(rng.integers(1, 15)), int(rng.integers(1, 15)))) > 0.5
        np.testing.assert_array_equal(boundary_loops(mask), boundary_vectorised(mask))
        np.testing.assert_array_equal(boundary_map(mask), boundary_loops(mask))


def test_full_frame_helpers_match_reference():
    rng = np.random.default_rng(1)
    gt = rng.random((60, 90)) > 0.6
    pred = rng.random((60, 90)) > 0.6
    assert abs(jaccard(gt, pred) - reference_j(gt, pred)) < 1e-12
    assert abs(f_measure(gt, pred) - reference_f(gt, pred)) < 1e-12


@st.composite
def id_maps(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    """Two id maps of one random size: random rectangles per object, or random noise."""
    height = draw(st.integers(1, 48))
    width = draw(st.integers(1, 48))
    n_objects = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(2):
        ids = np.zeros((height, width), dtype=np.uint8)
        if draw(st.booleans()):
            ids[:] = rng.integers(0, n_objects + 1, size=(height, width))
        else:
            for object_id in range(1, n_objects + 1):
                if rng.random() < 0.2:
                    continue
                y0, x0 = rng.integers(0, height), rng.integers(0, width)
                y1, x1 = rng.integers(y0, height + 1), rng.integers(x0, width + 1)
                ids[y0 : y1 + 1, x0 : x1 + 1] = object_id
        maps.append(ids)
    return maps[0], maps[1], n_objects


@settings(max_examples=150, deadline=None)
@given(id_maps())
def test_random_masks_match_reference(case):
    gt, pred, n_objects = case
    _check(gt, pred, n_objects)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 6))
def test_large_masks_where_the_tolerance_crop_matters(seed, shift):
    """Blobs in a 240x427 frame (radius 4) near and across borders: the cropped F must equal the full one."""
    rng = np.random.default_rng(seed)
    gt = _blank(240, 427)
    for object_id in (1, 2):
        cy, cx = rng.integers(0, 240), rng.integers(0, 427)
        ry, rx = rng.integers(3, 90), rng.integers(3, 120)
        ys, xs = np.ogrid[:240, :427]
        gt[((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1] = object_id
    pred = np.roll(gt, (shift, -shift), axis=(0, 1))
    pred[rng.random(gt.shape) < 0.002] = 2
    _check(gt, pred, 2, loops=False)


def _random_boundaries(rng: np.random.Generator, height: int, width: int, density: float) -> np.ndarray:
    """A uint8 0/1 map: a few random pixels, lines along the image edges, or nothing at all."""
    mask = (rng.random((height, width)) < density).astype(np.uint8)
    edge = rng.integers(0, 5)
    if edge == 1:
        mask[0, :] = 1
    elif edge == 2:
        mask[:, -1] = 1
    elif edge == 3:
        mask[-1, rng.integers(0, width)] = 1
        mask[rng.integers(0, height), 0] = 1
    elif edge == 4:
        mask[:] = 0
    return mask


def test_disk_dilation_is_opencvs_disk_dilation_exactly():
    """The chain of 1-D dilations equals cv2.dilate with the full disk kernel, edges included, for every radius."""
    rng = np.random.default_rng(3)
    for radius in range(0, 13):
        for height, width in [(1, 1), (1, 40), (40, 1), (7, 9), (30, 45), (64, 33)]:
            mask = _random_boundaries(rng, height, width, float(rng.choice([0.002, 0.02, 0.3])))
            np.testing.assert_array_equal(dilate_disk(mask, radius), cv2.dilate(mask, disk(radius)))
            other = _random_boundaries(rng, height, width, 0.02)
            both = dilate_disk(mask | (other << 1), radius)  # two maps in two bits: each dilated on its own
            np.testing.assert_array_equal(both & 1, cv2.dilate(mask, disk(radius)))
            np.testing.assert_array_equal(both >> 1, cv2.dilate(other, disk(radius)))


def test_matching_on_the_bounding_boxes_equals_full_frame_dilation():
    """Dilating only around the boundaries' boxes counts the same matches as dilating the whole frame."""
    rng = np.random.default_rng(4)
    for trial in range(300):
        height, width = int(rng.integers(1, 70)), int(rng.integers(1, 90))
        radius = int(rng.integers(0, 11))
        points = _random_boundaries(rng, height, width, float(rng.choice([0.0, 0.003, 0.05])))
        other = _random_boundaries(rng, height, width, float(rng.choice([0.0, 0.003, 0.05])))
        if trial % 5 == 0:  # far apart: one in the top-left corner, the other in the bottom-right one
            points[:] = 0
            other[:] = 0
            points[0, 0] = 1
            other[-1, -1] = 1
        full = (
            int(np.count_nonzero(points & cv2.dilate(other, disk(radius)))),
            int(np.count_nonzero(other & cv2.dilate(points, disk(radius)))),
        )
        assert _count_matched(points, other, radius) == full, (trial, height, width, radius)


def test_statistics_match_reference_including_long_sequences():
    rng = np.random.default_rng(2)
    for n in (1, 2, 3, 7, 10, 98, 255, 256, 257, 300, 1000):
        values = rng.random(n)
        np.testing.assert_allclose(statistics(values), reference_statistics(values), rtol=0, atol=1e-12)


def test_decay_is_not_wrapped_beyond_256_frames():
    """The official uint8 bin edges wrap after 256 frames; ours follow the definition."""
    values = np.concatenate([np.ones(150), np.zeros(150)])
    mean, recall, decay = statistics(values)
    assert mean == 0.5 and recall == 0.5
    assert decay == pytest.approx(reference_statistics(values)[2], abs=1e-12)
    assert decay == pytest.approx(1.0, abs=1e-12)
