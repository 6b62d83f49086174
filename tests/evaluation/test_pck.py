"""PCK equals a plain reference written from the definition, on random inputs and the cases real data has; the
folder scorer reads ``ino``'s keypoint files, reports per joint / video, and never imports torch."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ino.data.jhmdb import N_JOINTS, JhmdbLayout, keypoints_path, write_keypoints
from ino.data.synthetic_jhmdb import LIST_NAME, JhmdbSynthConfig, write_jhmdb_benchmark
from ino.errors import InoError
from ino.evaluation.pck import (
    THRESHOLDS,
    PckEvaluation,
    VideoPck,
    evaluate_pck,
    format_pck_table,
    normalised_distances,
    write_pck_outputs,
)
from support.reference_pck import reference_distances, reference_pck


def coordinates(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A mix of whole pixels (equal boxes, zero distances, exact ties), real numbers, and the special values -1 (a
    ground-truth zero once 0-based; the references' lost marker) and 0, over a range wider than the frame."""
    kind = rng.integers(0, 3, shape)
    values = np.where(kind == 0, rng.integers(-40, 360, shape).astype(np.float64), rng.uniform(-40, 360, shape))
    return np.where(kind == 2, rng.choice([-1.0, 0.0], shape), values)


@st.composite
def video(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, ground truth), (T, 15, 2): some predictions lost (NaN or negative x), some on the truth."""
    frames = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (frames, N_JOINTS, 2)
    gt, pred = coordinates(rng, shape), coordinates(rng, shape)
    same = rng.random(shape[:2]) < draw(st.sampled_from([0.0, 0.3, 1.0]))
    pred[same] = gt[same]
    pred[rng.random(shape[:2]) < draw(st.sampled_from([0.0, 0.2, 0.9]))] = np.nan
    return pred, gt


def scorer(videos: list[tuple[np.ndarray, np.ndarray]]) -> PckEvaluation:
    scored = [VideoPck(f"v{i}", *normalised_distances(p, g)) for i, (p, g) in enumerate(videos)]
    return PckEvaluation(scored, THRESHOLDS)


def assert_matches_reference(videos: list[tuple[np.ndarray, np.ndarray]]) -> None:
    evaluation = scorer(videos)
    per_joint, means = reference_pck(videos, THRESHOLDS)
    joints = list(evaluation.per_joint().values())
    for j in range(N_JOINTS):
        assert list(joints[j].values()) == per_joint[j]  # integer counts: bit for bit
    for got, want in zip(evaluation.global_results().values(), means, strict=True):
        assert (got is None and want is None) or got == pytest.approx(want, rel=1e-12)
    pooled = reference_distances(videos)
    for j in range(N_JOINTS):
        ours = np.concatenate([v.distance[v.counted[:, j], j] for v in evaluation.videos])
        np.testing.assert_array_equal(ours, np.array(pooled[j], dtype=np.float64))  # same entries, same order


@settings(max_examples=300, deadline=None)
@given(st.lists(video(), min_size=1, max_size=3))
def test_scorer_equals_the_reference_on_random_videos(videos: list[tuple[np.ndarray, np.ndarray]]) -> None:
    assert_matches_reference(videos)


def test_hand_made_cases() -> None:
    """Frame 0 never counts; lost joints leave the box; one counted joint (zero box) is counted but wrong; a
    ground-truth zero is scored; a box left of x = -1 is stretched to -1 as the reference's seed does."""
    gt = np.zeros((3, N_JOINTS, 2))
    gt[:, :, 0] = np.arange(N_JOINTS) * 10.0  # x 0..140, y 0: box diagonal 140, reference length 84
    pred = gt.copy()
    pred[:, 0, 0] += 8.4  # joint 0 off by 0.1 x 84 (within float rounding of the threshold)
    pred[:, 1, 0] += 42.0  # 0.5
    pred[1, 2:] = np.nan  # frame 1: only joints 0 and 1 counted: box from x 0..10, length 6
    pred[2, 14] = -1.0  # the references' lost marker
    distance, counted = normalised_distances(pred, gt)
    assert not counted[0].any()
    assert counted[1].tolist() == [True, True] + [False] * 13
    np.testing.assert_allclose(distance[1, :2], [8.4 / 6, 42 / 6])
    np.testing.assert_allclose(distance[2, :2], [8.4 / 0.6 / 130, 42 / 0.6 / 130])  # box without joint 14: 0..130
    single = np.full((2, N_JOINTS, 2), np.nan)
    single[1, 3] = (5.0, 5.0)
    distance, counted = normalised_distances(single, gt[:2])
    assert counted.sum() == 1 and math.isinf(distance[1, 3])  # d / 0
    left = np.full((2, N_JOINTS, 2), -30.0)
    left[:, :, 0] = -30.0 - np.arange(N_JOINTS)  # x -30..-44: true width 14, the reference's box starts at -1
    on_edge = left.copy()
    on_edge[:, :, 0] = 0.0  # predicted on the left edge (x >= 0: counted), |x| away from the truth
    distance, _ = normalised_distances(on_edge, left)
    expected_length = 0.6 * math.hypot(-1.0 - (-44.0), -1.0 - (-30.0))  # max seeded at -1 on both axes
    np.testing.assert_allclose(distance[1], np.abs(left[1, :, 0]) / expected_length)
    assert_matches_reference([(pred, gt), (single, gt[:2]), (on_edge, left)])


def test_a_distance_equal_to_the_threshold_is_correct() -> None:
    gt = np.zeros((2, N_JOINTS, 2))
    gt[:, 1] = (6.0, 8.0)  # box diagonal 10, reference length 0.6 * 10 = 6.0 exactly
    pred = gt.copy()
    pred[1, 0] = (3.0, 0.0)  # 3 / 6 = 0.5 exactly
    evaluation = scorer([(pred, gt)])
    assert list(evaluation.per_joint()["neck"].values()) == [0.0, 0.0, 0.0, 0.0, 100.0]  # PCK@0.1 .. PCK@0.5
    assert_matches_reference([(pred, gt)])


def test_a_joint_never_counted_is_left_out_of_the_mean() -> None:
    gt = np.random.default_rng(0).uniform(0, 100, (3, N_JOINTS, 2))
    pred = gt + 1.0
    pred[:, 4] = np.nan
    evaluation = scorer([(pred, gt)])
    assert evaluation.per_joint()["left_shoulder"] == dict.fromkeys(evaluation.global_results())
    assert evaluation.global_results()["PCK@0.1"] == 100.0
    assert_matches_reference([(pred, gt)])


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("jhmdb")
    return root, write_jhmdb_benchmark(root, 5, JhmdbSynthConfig(height=48, width=64, frames=6), seed=1)


def test_perfect_predictions_score_100_and_a_one_frame_video_has_no_score(
    bench: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """Predictions equal to the truth: 100 wherever the reference's rules let a joint count and be right. A truth
    left of the frame predicted there has x < 0, the references' "lost" marker, so it is not counted; so is a
    ground-truth zero predicted at (-1, -1) - predicted elsewhere, it counts unless ``exclude_unlabelled``."""
    root, names = bench
    layout = JhmdbLayout(root)
    videos = []
    for name in names:
        truth = layout.joints(name)
        pred = np.where(truth.labelled[..., None], truth.joints, 5.0)
        write_keypoints(keypoints_path(tmp_path, name), name, pred)
        videos.append((pred, truth.joints))
    evaluation = evaluate_pck(root, tmp_path, root / LIST_NAME)
    results = evaluation.video_results()
    assert results[names[0]] == results[names[4]] == dict.fromkeys(evaluation.global_results(), 100.0)
    assert results[names[3]] == dict.fromkeys(evaluation.global_results())  # one frame: nothing to score
    counted = sum((pred[1:, :, 0] >= 0).sum() for pred, _ in videos)
    assert evaluation.protocol["n_counted"] == counted
    assert list(evaluation.global_results().values()) == pytest.approx(reference_pck(videos, THRESHOLDS)[1])
    excluded = evaluate_pck(root, tmp_path, root / LIST_NAME, exclude_unlabelled=True)
    unlabelled = (~layout.joints(names[2]).labelled[1:]).sum()
    assert unlabelled > 0 and excluded.protocol["n_counted"] == counted - unlabelled
    assert excluded.video_results()[names[2]] == dict.fromkeys(evaluation.global_results(), 100.0)


def test_scorer_reads_the_files_it_is_given(bench: tuple[Path, list[str]], tmp_path: Path) -> None:
    root, names = bench
    layout = JhmdbLayout(root)
    rng = np.random.default_rng(3)
    videos = []
    for name in names:
        truth = layout.joints(name).joints
        pred = truth + rng.normal(0, 4, truth.shape)
        pred[rng.random(pred.shape[:2]) < 0.1] = np.nan
        write_keypoints(keypoints_path(tmp_path, name, ".npz" if name == names[0] else ".json"), name, pred)
        videos.append((pred, truth))
    evaluation = evaluate_pck(root, tmp_path, root / LIST_NAME)
    per_joint, means = reference_pck(videos, THRESHOLDS)
    assert list(evaluation.global_results().values()) == pytest.approx(means, rel=1e-12)
    paths = write_pck_outputs(evaluation, tmp_path / "scores")
    document = json.loads(paths["json"].read_text())
    assert document["global"] == evaluation.global_results() and set(document["videos"]) == set(names)
    assert document["joints"]["neck"]["PCK@0.5"] == per_joint[0][4]
    table = format_pck_table(evaluation)
    assert table in paths["markdown"].read_text() and f"| **mean** | {means[0]:.2f} |" in table


def test_missing_or_short_predictions_are_one_clear_error(bench: tuple[Path, list[str]], tmp_path: Path) -> None:
    root, names = bench
    with pytest.raises(InoError, match=re.escape(f"video {names[0]!r}: no keypoints file")):
        evaluate_pck(root, tmp_path, videos=[names[0]])
    write_keypoints(keypoints_path(tmp_path, names[0]), names[0], np.zeros((2, N_JOINTS, 2)))
    with pytest.raises(InoError, match=r"2 frame\(s\) of keypoints but the ground truth has 6"):
        evaluate_pck(root, tmp_path, videos=[names[0]])
    with pytest.raises(InoError, match="thresholds must be > 0"):
        evaluate_pck(root, tmp_path, thresholds=[0.1, 0.0])


def test_the_scorer_never_imports_torch() -> None:
    code = "import sys, ino.evaluation.pck; print([m for m in sys.modules if m.split('.')[0] == 'torch'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_ground_truth_through_the_feature_grid_scores_near_100(tmp_path: Path) -> None:
    """Every frame's truth encoded on CRW's 40x40 grid (320x320 input, stride 8) and decoded back: only the grid's
    quantisation and the one-joint frames of the figure leaving the frame keep it from 100 (end to end, pixels in
    and out: an axis swap or a wrong scale would sink it)."""
    from ino.propagation.keypoints import KEYPOINT_PRESETS, GridGeometry, decode_joints, encode_joints

    root = tmp_path / "data"
    names = write_jhmdb_benchmark(root, 6, JhmdbSynthConfig(frames=8), seed=0)
    layout = JhmdbLayout(root)
    geometry, spec = GridGeometry((240, 320), (320, 320), 8), KEYPOINT_PRESETS["crw"]
    for name in names:
        truth = layout.joints(name).joints
        pred = np.stack([decode_joints(encode_joints(joints, geometry, spec), geometry, spec) for joints in truth])
        write_keypoints(keypoints_path(tmp_path / "pred", name), name, pred)
    results = evaluate_pck(root, tmp_path / "pred", root / LIST_NAME).global_results()
    assert results["PCK@0.1"] > 97 and results["PCK@0.2"] > 99.5
