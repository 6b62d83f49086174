"""JHMDB keypoint propagation scored with PCK, definition for definition as ``code/eval/eval_pck.py`` of CRW
(``ajabri/videowalk``; CropMAE's copy computes the same), on predictions already in pixels.

The protocol (docs/evaluation.md, "JHMDB"):

- ground truth: ``pos_img - 1`` (0-based pixels); predictions: 0-based pixels of the original frame;
- a joint counts at frame k when its **predicted** x is >= 0 (the references mark a lost joint with -1; here a NaN
  prediction is also lost) - ground-truth zeros and joints outside the frame are scored like any other;
- frame 0 (the given one) never counts; every other annotated frame does;
- reference length at frame k: 0.6 x the diagonal of the box around the ground-truth joints counted at k, with the
  min / max seeded at 1e6 / -1 as the reference does (so a box lying wholly left of x = -1 is stretched to -1);
- normalised distance = Euclidean pixel distance / reference length (a zero length gives inf or NaN: counted,
  never correct); a joint is correct at threshold a when it is <= a;
- per joint: correct / counted over every video and frame pooled, in percent; the reported PCK@a is the plain mean
  over the 15 joints. A joint with nothing counted crashes the reference; here its PCK is NaN and the mean is over
  the joints that have entries (the protocol record lists them).

Per video, the same two steps restricted to that video. Nothing here imports torch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ino import __version__
from ino.data.jhmdb import JOINT_NAMES, N_JOINTS, JhmdbLayout, keypoints_path, read_keypoints
from ino.errors import InoError
from ino.utils.atomic import atomic_write_text
from ino.utils.outputs import exclusive

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)
REFERENCE_FACTOR = 0.6


def normalised_distances(
    pred: np.ndarray, gt: np.ndarray, labelled: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(distance / reference length, counted), both (T, 15), for one video's predictions and ground truth (T, 15, 2).

    ``labelled`` (T, 15), when given, also drops unlabelled ground-truth joints (not the reference's rule).
    """
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or gt.ndim != 3 or gt.shape[1:] != (N_JOINTS, 2):
        raise ValueError(f"predictions {pred.shape} and ground truth {gt.shape} must both be (T, {N_JOINTS}, 2)")
    with np.errstate(invalid="ignore"):
        counted = pred[..., 0] >= 0
    if labelled is not None:
        counted &= labelled
    counted[0] = False
    gx, gy = gt[..., 0], gt[..., 1]
    width = np.max(gx, axis=1, initial=-1.0, where=counted) - np.min(gx, axis=1, initial=1e6, where=counted)
    height = np.max(gy, axis=1, initial=-1.0, where=counted) - np.min(gy, axis=1, initial=1e6, where=counted)
    length = REFERENCE_FACTOR * np.sqrt(width * width + height * height)
    dx, dy = pred[..., 0] - gx, pred[..., 1] - gy
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = np.sqrt(dx * dx + dy * dy) / length[:, None]
    return np.where(counted, distance, np.nan), counted


def correct_counts(distance: np.ndarray, counted: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Correct entries per joint and threshold, (15, len(thresholds)); a NaN or inf distance is never correct."""
    with np.errstate(invalid="ignore"):
        return np.stack([(counted & (distance <= a)).sum(axis=0) for a in thresholds], axis=1)


def pck_percent(correct: np.ndarray, counted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-joint PCK (15, n) in percent, NaN where nothing counted; mean over joints with entries (n,))."""
    with np.errstate(invalid="ignore", divide="ignore"):
        per_joint = 100.0 * correct / counted[:, None]
    has = counted > 0
    mean = per_joint[has].mean(axis=0) if has.any() else np.full(correct.shape[1], np.nan)
    return per_joint, mean


@dataclass
class VideoPck:
    """One video's normalised distances and counted entries, (T, 15) each."""

    name: str
    distance: np.ndarray
    counted: np.ndarray


def _label(a: float) -> str:
    return f"PCK@{a:g}"


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass
class PckEvaluation:
    """Every video's distances, the thresholds and the protocol that produced them."""

    videos: list[VideoPck]
    thresholds: tuple[float, ...] = THRESHOLDS
    protocol: dict[str, object] = field(default_factory=dict)

    def _pooled(self, videos: Sequence[VideoPck]) -> tuple[np.ndarray, np.ndarray]:
        """Per-joint and mean PCK of ``videos`` with every entry pooled."""
        correct = np.zeros((N_JOINTS, len(self.thresholds)), dtype=np.int64)
        counted = np.zeros(N_JOINTS, dtype=np.int64)
        for video in videos:
            correct += correct_counts(video.distance, video.counted, self.thresholds)
            counted += video.counted.sum(axis=0)
        return pck_percent(correct, counted)

    def per_joint(self) -> dict[str, dict[str, float | None]]:
        """{joint name: {"PCK@0.1": percent or None, ...}} pooled over every video."""
        per_joint, _ = self._pooled(self.videos)
        return {
            name: {_label(a): _number(per_joint[j, i]) for i, a in enumerate(self.thresholds)}
            for j, name in enumerate(JOINT_NAMES)
        }

    def global_results(self) -> dict[str, float | None]:
        """{"PCK@0.1": mean over joints of the pooled per-joint PCK, ...} in percent, as eval_pck.py prints."""
        _, mean = self._pooled(self.videos)
        return {_label(a): _number(mean[i]) for i, a in enumerate(self.thresholds)}

    def video_results(self) -> dict[str, dict[str, float | None]]:
        """Per video, the same mean over its joints (None when the video has nothing counted, e.g. one frame)."""
        results = {}
        for video in self.videos:
            _, mean = self._pooled([video])
            results[video.name] = {_label(a): _number(mean[i]) for i, a in enumerate(self.thresholds)}
        return results


def _predictions(results: Path, name: str) -> Path:
    for suffix in (".json", ".npz"):
        path = keypoints_path(results, name, suffix)
        if path.is_file():
            return path
    raise InoError(f"video {name!r}: no keypoints file {keypoints_path(results, name, '.json')} (or .npz)")


def evaluate_pck(
    jhmdb_root: str | Path,
    results: str | Path,
    list_file: str | Path | None = None,
    videos: Sequence[str] | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
    exclude_unlabelled: bool = False,
    max_frames: int | None = None,
) -> PckEvaluation:
    """Score ``results/<action>/<video>.json`` (or ``.npz``) against a JHMDB root.

    Videos: ``videos`` if given, else those of ``list_file``, else every video with a joint file.
    ``exclude_unlabelled`` also drops ground-truth joints stored as (0, 0) - a deliberate departure from the
    reference, which scores them at (-1, -1); off by default. ``max_frames`` scores each video's first N frames
    only (a quick check of a run made with the same limit, not the benchmark); predictions then need at least
    those frames.
    """
    started = time.perf_counter()
    thresholds = tuple(float(a) for a in thresholds)
    if not thresholds or any(not a > 0 for a in thresholds):
        raise InoError(f"PCK thresholds must be > 0, got {thresholds}")
    if max_frames is not None and max_frames < 1:
        raise InoError(f"max_frames must be >= 1, got {max_frames}")
    layout = JhmdbLayout(Path(jhmdb_root))
    results = Path(results)
    if not results.is_dir():
        raise InoError(f"{results}: results folder not found")
    names = list(videos) if videos else layout.videos(list_file)
    scored = []
    for name in names:
        truth = layout.joints(name)
        path = _predictions(results, name)
        pred = read_keypoints(path)
        scored_frames = truth.n_frames if max_frames is None else min(truth.n_frames, max_frames)
        if not scored_frames <= pred.shape[0] <= truth.n_frames:
            limit = "" if max_frames is None else f" (max_frames {max_frames} scores its first {scored_frames})"
            raise InoError(
                f"{path}: {pred.shape[0]} frame(s) of keypoints but the ground truth has {truth.n_frames}{limit}"
            )
        window = slice(0, scored_frames)
        labelled = truth.labelled[window] if exclude_unlabelled else None
        distance, counted = normalised_distances(pred[window], truth.joints[window], labelled)
        scored.append(VideoPck(name, distance, counted))
    counted_per_joint = sum((v.counted.sum(axis=0) for v in scored), np.zeros(N_JOINTS, dtype=np.int64))
    protocol = {
        "task": "JHMDB keypoint propagation, PCK (eval_pck.py definitions of CRW / CropMAE)",
        "jhmdb_root": str(layout.root),
        "results": str(results),
        "list": None if list_file is None or videos else str(list_file),
        "videos": names,
        "thresholds": list(thresholds),
        "frames_scored": "every annotated frame except the first (the given one)"
        + ("" if max_frames is None else f", of the first {max_frames} (truncated videos, not the benchmark)"),
        "max_frames": max_frames,
        "joints_counted": "predicted x >= 0 (NaN = not predicted)"
        + (" and labelled in the ground truth (not (0, 0))" if exclude_unlabelled else "; ground-truth zeros count"),
        "reference_length": "0.6 x diagonal of the box around the counted ground-truth joints of the frame "
        "(min/max seeded with 1e6/-1 as eval_pck.py)",
        "correct": "distance / reference length <= threshold",
        "aggregation": "per joint: pooled over all videos and frames; PCK = plain mean over joints with entries",
        "exclude_unlabelled": exclude_unlabelled,
        "n_counted": int(counted_per_joint.sum()),
        "joints_without_entries": [JOINT_NAMES[j] for j in np.flatnonzero(counted_per_joint == 0)],
        "seconds": round(time.perf_counter() - started, 3),
    }
    return PckEvaluation(scored, thresholds, protocol)


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_pck_table(evaluation: PckEvaluation) -> str:
    """The global PCK row and one row per joint, as a Markdown table (percent, 2 decimals)."""
    labels = [_label(a) for a in evaluation.thresholds]
    global_row = evaluation.global_results()
    rows = [["**mean**", *(_cell(global_row[label]) for label in labels)]]
    rows += [[name, *(_cell(values[label]) for label in labels)] for name, values in evaluation.per_joint().items()]
    return _markdown(["joint", *labels], rows)


def write_pck_outputs(evaluation: PckEvaluation, out_dir: str | Path) -> dict[str, Path]:
    """Write ``pck.json`` (protocol, global, per joint, per video) and ``pck.md``, as the folder's only writer."""
    with exclusive(out_dir, "ino evaluate (PCK)") as out_dir:
        labels = [_label(a) for a in evaluation.thresholds]
        per_video = evaluation.video_results()
        document = {
            "ino_version": __version__,
            "protocol": evaluation.protocol,
            "global": evaluation.global_results(),
            "joints": evaluation.per_joint(),
            "videos": per_video,
        }
        video_rows = [[name, *(_cell(values[label]) for label in labels)] for name, values in per_video.items()]
        markdown = (
            f"# JHMDB keypoint propagation: PCK (percent)\n\n{format_pck_table(evaluation)}\n\n"
            f"## Per video\n\n{_markdown(['video', *labels], video_rows)}\n\n"
            "## Protocol\n\n"
            + "".join(f"- {key}: {value}\n" for key, value in evaluation.protocol.items() if key != "videos")
        )
        paths = {"json": out_dir / "pck.json", "markdown": out_dir / "pck.md"}
        atomic_write_text(paths["json"], json.dumps(document, indent=1))
        atomic_write_text(paths["markdown"], markdown)
        return paths
