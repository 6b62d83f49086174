"""``max_frames`` in the PCK and VIP scorers (a quick check of ``ino propagate --max-frames N``): exactly the scores
of the videos cut to their first N frames, recorded in the protocol; predictions of a truncated run are accepted
only with the limit, and never longer than the ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ino.data.jhmdb import JhmdbLayout, keypoints_path, write_keypoints
from ino.data.synthetic_jhmdb import LIST_NAME, JhmdbSynthConfig, write_jhmdb_benchmark
from ino.data.synthetic_vip import SynthVipConfig, write_vip_benchmark
from ino.data.vip import IGNORE_ID, VipLayout, read_category_ids, write_category_ids
from ino.errors import InoError
from ino.evaluation.pck import correct_counts, evaluate_pck, normalised_distances, pck_percent
from ino.evaluation.vip import confusion, evaluate_vip, mean_iou


def test_pck_with_a_frame_limit_scores_the_first_frames_only(tmp_path: Path) -> None:
    root, results = tmp_path / "jhmdb", tmp_path / "results"
    names = write_jhmdb_benchmark(root, videos=3, config=JhmdbSynthConfig(height=60, width=80, frames=6))
    layout, rng = JhmdbLayout(root), np.random.default_rng(0)
    predictions = {}
    for name in names:
        truth = layout.joints(name).joints
        predictions[name] = truth + rng.normal(0, 3, truth.shape)
        write_keypoints(keypoints_path(results, name), name, predictions[name])
    evaluation = evaluate_pck(root, results, root / LIST_NAME, max_frames=4)
    correct, counted = np.zeros((15, 5), dtype=np.int64), np.zeros(15, dtype=np.int64)
    for name in names:
        distance, scored = normalised_distances(predictions[name][:4], layout.joints(name).joints[:4])
        correct += correct_counts(distance, scored, (0.1, 0.2, 0.3, 0.4, 0.5))
        counted += scored.sum(axis=0)
    expected = pck_percent(correct, counted)[1]
    assert list(evaluation.global_results().values()) == pytest.approx(expected.tolist(), rel=0, abs=1e-12)
    assert evaluation.protocol["max_frames"] == 4 and "first 4" in evaluation.protocol["frames_scored"]
    assert evaluation.global_results() != evaluate_pck(root, results, root / LIST_NAME).global_results()
    # a truncated run's files: scored with the limit, refused without it; longer than the truth: refused always
    write_keypoints(keypoints_path(results, names[0]), names[0], predictions[names[0]][:4])
    assert evaluate_pck(root, results, root / LIST_NAME, max_frames=4).global_results() == evaluation.global_results()
    with pytest.raises(InoError, match=r"4 frame\(s\) of keypoints but the ground truth has 6$"):
        evaluate_pck(root, results, root / LIST_NAME)
    with pytest.raises(InoError, match=r"max_frames 5 scores its first 5"):
        evaluate_pck(root, results, root / LIST_NAME, max_frames=5)
    write_keypoints(keypoints_path(results, names[0]), names[0], np.concatenate([predictions[names[0]]] * 2))
    with pytest.raises(InoError, match="12 frame"):
        evaluate_pck(root, results, root / LIST_NAME, max_frames=4)


def test_vip_with_a_frame_limit_scores_the_annotated_frames_among_the_first(tmp_path: Path) -> None:
    root, results = tmp_path / "vip", tmp_path / "results"
    write_vip_benchmark(root, videos=2, config=SynthVipConfig(height=40, width=60, frames=7, key_every=2), seed=1)
    layout = VipLayout(root)
    matrix = np.zeros((20, 20), dtype=np.int64)
    for name in layout.videos():
        annotations = layout.video(name).annotations
        shifted = [
            np.roll(np.where(read_category_ids(p) == IGNORE_ID, 0, read_category_ids(p)), 3) for p in annotations
        ]
        for path, pred in zip(annotations, shifted, strict=True):
            write_category_ids(results / name / path.name, pred)
            if int(path.stem) <= 4:  # frames 1..4 of the video: the annotated 1 and 3
                matrix += confusion(read_category_ids(path), pred)
    limited = evaluate_vip(root, results, max_frames=4)
    assert [v.frames for v in limited.videos] == [["000000000001", "000000000003"], ["000000000001"]]
    np.testing.assert_array_equal(limited.confusion, matrix)
    assert limited.miou() == mean_iou(matrix) and limited.protocol["max_frames"] == 4
    assert evaluate_vip(root, results).protocol["n_frames"] == 4 + 1
