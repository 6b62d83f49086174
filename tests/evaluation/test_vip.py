"""VIP part mIoU equals the plain reference (tests/support/reference_miou.py) and follows eval_vip.py's protocol."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ino.cli import main
from ino.data.synthetic_vip import SynthVipConfig, write_vip_benchmark
from ino.data.vip import VipLayout, read_category_ids, write_category_ids
from ino.errors import InoError
from ino.evaluation.vip import class_iou, confusion, evaluate_vip, mean_iou, resize_nearest
from support.reference_miou import pil_nearest_indices, reference_class_iou, reference_miou

CONFIG = SynthVipConfig(height=48, width=80, frames=11)


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vip") / "VIP_Fine"
    write_vip_benchmark(root, videos=3, config=CONFIG, seed=0)
    return root


@pytest.fixture
def perfect(bench, tmp_path) -> Path:
    """Predictions equal to the ground truth, in CRW's layout: <video>/<frame>.png."""
    copy = tmp_path / "results"
    shutil.copytree(bench / "Annotations" / "Category_ids", copy)
    return copy


def _random_frame(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ground truth over a few classes with some 255, and a prediction over a few (other) classes, often of
    another size."""
    shape = tuple(int(v) for v in rng.integers(1, 13, 2))
    truth_classes = rng.choice(20, size=int(rng.integers(1, 6)), replace=False)
    gt = rng.choice(truth_classes, size=shape).astype(np.uint8)
    gt[rng.random(shape) < rng.choice([0.0, 0.2])] = 255
    pred_shape = shape if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(1, 13, 2))
    pred_classes = np.concatenate([truth_classes, rng.choice(20, size=int(rng.integers(0, 3)))])
    pred = rng.choice(pred_classes, size=pred_shape).astype(np.uint8)
    return gt, pred


def _scorer_matrix(frames: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    return sum(confusion(gt, resize_nearest(pred, gt.shape)) for gt, pred in frames)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_frames=st.integers(1, 4))
def test_scorer_equals_the_reference_on_random_frames(seed: int, n_frames: int) -> None:
    rng = np.random.default_rng(seed)
    frames = [_random_frame(rng) for _ in range(n_frames)]
    if all((gt == 255).all() for gt, _ in frames):
        frames[0][0][0, 0] = 0
    matrix = _scorer_matrix(frames)
    ours = [None if np.isnan(v) else float(v) for v in class_iou(matrix)]
    assert ours == reference_class_iou(frames)  # exact: the same two integers divided
    assert mean_iou(matrix) == pytest.approx(reference_miou(frames), rel=1e-12, abs=0)


@pytest.mark.parametrize(("size_in", "size_out"), [(2, 7), (7, 2), (5, 5), (1, 9), (880, 1280), (448, 720)])
def test_nearest_resize_is_pils_rule_including_half_way_points(size_in: int, size_out: int) -> None:
    ids = (np.arange(size_in) % 20).astype(np.uint8)[None, :].repeat(2, 0)
    resized = resize_nearest(ids, (2, size_out))
    np.testing.assert_array_equal(resized[0], ids[0][pil_nearest_indices(size_in, size_out)])
    if (size_in, size_out) == (2, 7):  # (3 + 0.5) * 2 / 7 is exactly 1, but PIL's accumulated step lands below
        assert resized[0, 3] == 0


def test_absent_classes_unlabelled_pixels_and_false_positives_follow_eval_vip() -> None:
    gt = np.array([[0, 0, 1, 1], [0, 255, 1, 1]], dtype=np.uint8)
    pred = np.array([[0, 2, 1, 1], [0, 5, 1, 0]], dtype=np.uint8)
    matrix = confusion(gt, pred)
    assert matrix[:, 5].sum() == 0  # the 5 sits on a 255 pixel: counted nowhere
    iou = class_iou(matrix)
    assert iou[0] == pytest.approx(2 / 4) and iou[1] == pytest.approx(3 / 4)
    assert iou[2] == 0  # predicted, never true: IoU 0, averaged
    assert np.isnan(iou[3:]).all()  # in neither: 0/0, not averaged
    assert mean_iou(matrix) == pytest.approx((0.5 + 0.75 + 0.0) / 3)


def test_perfect_predictions_score_one_and_classes_never_drawn_are_not_averaged(bench, perfect) -> None:
    evaluation = evaluate_vip(bench, perfect, workers=1)
    assert evaluation.miou() == 1.0
    iou = evaluation.class_iou()
    assert all(iou[c] is None for c in (3, 6, 8, 10))  # gloves, dress, socks, torso-skin: never drawn
    assert evaluation.global_results() == {"mIoU": 1.0, "pixel_accuracy": 1.0, "mean_class_accuracy": 1.0}
    assert [len(v.frames) for v in evaluation.videos] == [3, 3, 1]  # every annotated frame, the first included


def _first_frame_copy(bench: Path, out: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Write the first annotated frame's labels as every frame's prediction; return (gt, pred) pairs."""
    layout = VipLayout(bench)
    pairs = []
    for name in layout.videos():
        video = layout.video(name)
        first = read_category_ids(video.annotations[0])
        for annotation in video.annotations:
            write_category_ids(out / name / annotation.name, np.where(first == 255, 0, first))
            pairs.append((read_category_ids(annotation), np.where(first == 255, 0, first).astype(np.uint8)))
    return pairs


def test_benchmark_score_equals_the_reference_and_is_not_the_mean_of_videos(bench, tmp_path) -> None:
    pairs = _first_frame_copy(bench, tmp_path / "copy")
    evaluation = evaluate_vip(bench, tmp_path / "copy", workers=2)
    assert evaluation.miou() == pytest.approx(reference_miou(pairs), rel=1e-12)
    assert evaluation.class_iou() == reference_class_iou(pairs)
    assert 0 < evaluation.miou() < 1
    per_video = evaluation.video_miou()
    assert per_video["videos1"] == pytest.approx(reference_miou(pairs[:3]), rel=1e-12)
    assert per_video["videos3"] == 1.0  # one annotated frame: the copy is the truth
    assert evaluation.miou() != pytest.approx(np.mean(list(per_video.values())))
    serial = evaluate_vip(bench, tmp_path / "copy", workers=1)
    np.testing.assert_array_equal(serial.confusion, evaluation.confusion)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_files_end_to_end_equal_the_reference(seed: int) -> None:
    """Ground truth and predictions through PNG files, predictions of other sizes, 255 and absent classes."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as folder:
        root, results = Path(folder) / "VIP", Path(folder) / "results"
        pairs = []
        for v in range(int(rng.integers(1, 3))):
            for t in range(int(rng.integers(1, 4))):
                gt, pred = _random_frame(rng)
                gt[0, 0] = rng.integers(0, 20)
                name = f"{t * 25 + 1:012d}"
                images = root / "Images" / f"videos{v + 1}"
                images.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.zeros((*gt.shape, 3), np.uint8)).save(images / f"{name}.jpg")
                write_category_ids(root / "Annotations" / "Category_ids" / f"videos{v + 1}" / f"{name}.png", gt)
                write_category_ids(results / f"videos{v + 1}" / f"{name}.png", pred)
                pairs.append((gt, pred))
        evaluation = evaluate_vip(root, results, workers=1)
        assert evaluation.class_iou() == reference_class_iou(pairs)
        assert evaluation.miou() == pytest.approx(reference_miou(pairs), rel=1e-12)


def test_cropmae_names_missing_frames_and_bad_predictions(bench, perfect) -> None:
    frame = perfect / "videos1" / "000000000006.png"
    frame.rename(perfect / "videos1" / "000000000006_mask.png")  # CropMAE's name for the same map
    assert evaluate_vip(bench, perfect, workers=1).miou() == 1.0
    (perfect / "videos1" / "000000000006_mask.png").unlink()
    with pytest.raises(InoError, match=r"video 'videos1', frame 000000000006: prediction .* is missing"):
        evaluate_vip(bench, perfect)
    background = evaluate_vip(bench, perfect, allow_missing=True)
    assert background.protocol["allow_missing"] is True
    assert background.confusion[1:, 0].sum() > 0  # the missing frame's parts were scored as background
    write_category_ids(frame, np.full((48, 80), 20, dtype=np.uint8))
    with pytest.raises(InoError, match=r"000000000006\.png: predicted class id 20 is not a VIP part class"):
        evaluate_vip(bench, perfect)


def test_a_prediction_at_another_size_is_resized_to_the_truth(bench, perfect) -> None:
    path = perfect / "videos2" / "000000000001.png"
    gt = read_category_ids(path)
    Image.fromarray(gt).resize((160, 96), Image.Resampling.NEAREST).save(path)  # exactly 2x: nearest gives gt back
    assert evaluate_vip(bench, perfect, workers=1).miou() == 1.0


def test_cli_prints_tables_writes_json_and_markdown_and_refuses_the_dataset(bench, perfect, tmp_path, capsys) -> None:
    out = tmp_path / "scores"
    code = main(["evaluate", "--quiet", "--vip-root", str(bench), "--results", str(perfect), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert printed.splitlines()[1].split() == ["mIoU", "pixel_accuracy", "mean_class_accuracy"]
    assert "  3        gloves      n/a" in printed and "videos3" in printed
    document = json.loads((out / "vip_results-val.json").read_text())
    assert document["global"]["mIoU"] == 1.0 and document["classes"]["3"]["iou"] is None
    assert len(document["confusion"]) == 20 and document["videos"]["videos3"]["frames"] == ["000000000001"]
    assert "| 0 | background | 1.000000 |" in (out / "vip_results-val.md").read_text()
    inside = bench / "Annotations" / "scores"
    assert main(["evaluate", "--vip-root", str(bench), "--results", str(perfect), "--out", str(inside)]) == 2
    assert "lies inside the input data folder" in capsys.readouterr().err
    assert not inside.exists()


def test_vip_scoring_never_imports_torch(bench, perfect) -> None:
    argv = ["evaluate", "--quiet", "--vip-root", str(bench), "--results", str(perfect)]
    code = (
        "import contextlib, io, json, sys\nfrom ino.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    status = main({argv!r})\n"
        "print(json.dumps([status, [m for m in sys.modules if m.split('.')[0] == 'torch']]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0, []], done.stderr
