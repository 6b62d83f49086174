"""The scorer on real DAVIS ground truth (../shared/data/davis-dev) against the plain test reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ino.data.davis import DavisLayout, read_mask, write_mask
from ino.evaluation.scorer import evaluate
from support.reference_metrics import reference_frame, reference_statistics


def _perturb(kind: str, gt: np.ndarray, index: int) -> np.ndarray:
    """A prediction derived from the ground truth: eroded, dilated, shifted, or dropped on some frames."""
    kernel = np.ones((7, 7), np.uint8)
    if kind == "erode":
        return cv2.erode(gt, kernel)
    if kind == "dilate":
        return cv2.dilate(gt, kernel)
    shifted = np.zeros_like(gt)
    shifted[:-5, 9:] = gt[5:, :-9]
    if index % 7 == 3:
        shifted[:] = 0
    return shifted


@pytest.fixture(scope="module")
def perturbed(davis_dev, tmp_path_factory):
    """Prediction folders for each perturbation, every frame of every dev sequence."""
    layout = DavisLayout(davis_dev)
    root = tmp_path_factory.mktemp("perturbed")
    for kind in ("erode", "dilate", "shift"):
        for name in layout.sequences():
            for index, frame in enumerate(layout.annotation_frames(name)):
                gt = read_mask(layout.annotation_dir(name) / f"{frame}.png")
                write_mask(root / kind / name / f"{frame}.png", _perturb(kind, gt, index))
    return layout, root


def test_ground_truth_against_itself_is_perfect(davis_dev):
    layout = DavisLayout(davis_dev)
    evaluation = evaluate(davis_dev, davis_dev / "Annotations" / "480p", workers=2)
    assert [s.name for s in evaluation.sequences] == layout.sequences()
    results = evaluation.global_results()
    assert results["J-Mean"] == results["F-Mean"] == results["J&F-Mean"] == 1.0
    assert results["J-Recall"] == results["F-Recall"] == 1.0
    assert results["J-Decay"] == results["F-Decay"] == 0.0
    for scores in evaluation.sequences:
        assert len(scores.frames) == len(layout.annotation_frames(scores.name)) - 2


@pytest.mark.parametrize("kind", ["erode", "dilate", "shift"])
def test_perturbed_predictions_score_exactly_as_the_reference(perturbed, kind):
    layout, root = perturbed
    evaluation = evaluate(layout.root, root / kind, workers=2)
    all_j, all_f = [], []
    for scores in evaluation.sequences:
        frames = layout.annotation_frames(scores.name)
        assert scores.frames == frames[1:-1]
        ref_j, ref_f = [], []
        for frame in scores.frames:
            gt = read_mask(layout.annotation_dir(scores.name) / f"{frame}.png")
            pred = read_mask(root / kind / scores.name / f"{frame}.png")
            j, f = reference_frame(gt, pred, 1)
            ref_j.append(j[0])
            ref_f.append(f[0])
        np.testing.assert_allclose(scores.j[:, 0], ref_j, rtol=0, atol=1e-12)
        np.testing.assert_allclose(scores.f[:, 0], ref_f, rtol=0, atol=1e-12)
        (row,) = scores.object_statistics()
        np.testing.assert_allclose(
            [row["J-Mean"], row["J-Recall"], row["J-Decay"], row["F-Mean"], row["F-Recall"], row["F-Decay"]],
            [*reference_statistics(ref_j), *reference_statistics(ref_f)],
            rtol=0,
            atol=1e-12,
        )
        all_j.append(reference_statistics(ref_j)[0])
        all_f.append(reference_statistics(ref_f)[0])
    results = evaluation.global_results()
    assert results["J&F-Mean"] == pytest.approx((np.mean(all_j) + np.mean(all_f)) / 2, abs=1e-12)
    assert 0 < results["J&F-Mean"] < 1
