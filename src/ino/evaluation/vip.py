"""VIP part propagation: mIoU from one 20 x 20 confusion matrix, as CRW's ``code/eval/eval_vip.py`` computes it.

Protocol (docs/evaluation.md, "VIP part propagation"; every line checked against ``eval_vip.py`` in
``tests/evaluation/test_vip.py``):

- every annotated frame of every listed video is scored, the first annotated frame included;
- a prediction of another size is resized to the ground truth's with PIL's nearest-neighbour rule;
- one confusion matrix (rows: ground truth, columns: prediction) is accumulated over all those frames; ground-truth
  pixels outside 0..19 (VIP's 255) are not counted, in either direction;
- IoU of class c = C[c, c] / (row c + column c - C[c, c]); a class with no pixel in the ground truth nor in the
  predictions of any scored frame has 0/0, which ``eval_vip.py`` leaves as NaN and ``np.nanmean`` skips: such a
  class is left out of the mean (and reported as None), while a class predicted but absent from the ground truth
  (or the reverse) counts with IoU 0;
- mIoU = the mean of the remaining per-class IoUs, background (class 0) included.

Per-video numbers apply the same rule to each video's own matrix; the benchmark mIoU is not their mean. Nothing
here imports torch.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from ino.data.vip import IGNORE_ID, N_CLASSES, VipLayout, VipVideo, read_category_ids, read_prediction_ids
from ino.errors import InoError


def resize_nearest(ids: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``ids`` resized to ``shape`` (H, W) with PIL's nearest rule, the one ``eval_vip.py`` applies.

    PIL's own arithmetic, not an exact ``floor((x + 0.5) * in / out)``: PIL accumulates the step in floating point,
    which differs at exact half-way points (2 -> 7 pixels: output 3 takes input 0, not 1).
    """
    if ids.shape == shape:
        return ids
    image = Image.fromarray(np.ascontiguousarray(ids, dtype=np.uint8), mode="L")
    return np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.NEAREST))


def confusion(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(20, 20) int64 pixel counts, rows the ground-truth class and columns the predicted one; ground-truth pixels
    outside 0..19 are not counted. ``pred`` must already hold ids 0..19 at the ground truth's size."""
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    valid = gt < N_CLASSES
    pairs = gt[valid].astype(np.int64) * N_CLASSES + pred[valid]
    return np.bincount(pairs, minlength=N_CLASSES * N_CLASSES).reshape(N_CLASSES, N_CLASSES)


def class_iou(matrix: np.ndarray) -> np.ndarray:
    """IoU per class, NaN where the class is in neither the ground truth nor the predictions (0/0)."""
    hits = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=1) + matrix.sum(axis=0) - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        return hits / union


def mean_iou(matrix: np.ndarray) -> float:
    """Mean of the defined per-class IoUs (``np.nanmean``), NaN when no pixel was counted."""
    return _nanmean(class_iou(matrix))


def _nanmean(values: np.ndarray) -> float:
    """``np.nanmean`` without its warning when every value is NaN (the result is then NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(values))


@dataclass
class VideoScores:
    """One video's scored frames and its confusion matrix."""

    name: str
    frames: list[str]
    confusion: np.ndarray

    @property
    def miou(self) -> float:
        return mean_iou(self.confusion)


@dataclass
class VipEvaluation:
    """Per-video confusion matrices plus the protocol that produced them."""

    videos: list[VideoScores]
    protocol: dict[str, object] = field(default_factory=dict)

    @property
    def confusion(self) -> np.ndarray:
        """The benchmark's one matrix: the sum over every scored frame of every video."""
        return sum((v.confusion for v in self.videos), np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64))

    def class_iou(self) -> list[float | None]:
        """IoU of classes 0..19; None where the class is in neither ground truth nor predictions (not averaged)."""
        return [None if np.isnan(v) else float(v) for v in class_iou(self.confusion)]

    def miou(self) -> float:
        return mean_iou(self.confusion)

    def global_results(self) -> dict[str, float]:
        """mIoU, pixel accuracy and mean class accuracy (the other two lines ``eval_vip.py`` prints)."""
        matrix = self.confusion
        hits = np.diag(matrix).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class_accuracy = hits / matrix.sum(axis=1)
        return {
            "mIoU": self.miou(),
            "pixel_accuracy": float(hits.sum() / matrix.sum()),
            "mean_class_accuracy": _nanmean(per_class_accuracy),
        }

    def video_miou(self) -> dict[str, float]:
        """mIoU of each video from its own matrix (NaN for a video with no counted pixel)."""
        return {v.name: v.miou for v in self.videos}


@dataclass(frozen=True)
class _Task:
    video: VipVideo
    results_dir: Path
    allow_missing: bool
    scored: tuple[Path, ...]  # the annotations scored: every one, or those within max_frames


def scored_annotations(video: VipVideo, max_frames: int | None = None) -> tuple[Path, ...]:
    """The annotations of ``video`` that are scored: all, or with ``max_frames`` those among the first N frames
    from the first annotated one (the frames a run with that limit propagates through)."""
    if max_frames is None:
        return video.annotations
    window = {p.stem for p in video.propagated_frames()[:max_frames]}
    return tuple(p for p in video.annotations if p.stem in window)


def _prediction_path(task: _Task, frame: str) -> Path | None:
    """``<frame>.png`` (CRW's name), else ``<frame>_mask.png`` (CropMAE's), else None."""
    for name in (f"{frame}.png", f"{frame}_mask.png"):
        path = task.results_dir / name
        if path.is_file():
            return path
    return None


def _score_video(task: _Task) -> np.ndarray:
    """The confusion matrix of one video's annotated frames; runs in a worker thread."""
    matrix = np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64)
    for annotation in task.scored:
        frame = annotation.stem
        where = f"video {task.video.name!r}, frame {frame}"
        try:
            gt = read_category_ids(annotation)
            path = _prediction_path(task, frame)
            if path is None:
                if not task.allow_missing:
                    raise InoError(
                        f"prediction {task.results_dir / frame}.png is missing (--allow-missing scores it as "
                        "background)"
                    )
                pred = np.zeros_like(gt)
            else:
                pred = resize_nearest(read_prediction_ids(path), gt.shape)
        except InoError as error:
            raise InoError(f"{where}: {error}") from None
        matrix += confusion(gt, pred)
    return matrix


def _run(tasks: list[_Task], workers: int, progress: bool) -> list[np.ndarray]:
    """Score videos in order; threads suffice because PNG decoding and NumPy release the GIL."""
    bar = tqdm(total=sum(len(t.scored) for t in tasks), unit="frame", desc="scoring", disable=not progress)
    outputs = []
    with bar:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                outputs.append(_score_video(task))
                bar.update(len(task.scored))
            return outputs
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for task, output in zip(tasks, pool.map(_score_video, tasks), strict=True):
                outputs.append(output)
                bar.update(len(task.scored))
    return outputs


def evaluate_vip(
    vip_root: str | Path,
    results: str | Path,
    set_name: str = "val",
    list_file: str | Path | None = None,
    videos: Sequence[str] | None = None,
    workers: int | None = None,
    allow_missing: bool = False,
    progress: bool = False,
    max_frames: int | None = None,
) -> VipEvaluation:
    """Score ``results/<video>/<frame>.png`` class-id maps against a ``VIP_Fine`` root's part annotations.

    The videos are ``videos`` when given, else those of ``list_file`` (default ``lists/<set>_videos.txt``), else
    every annotated video. ``max_frames`` scores only the annotated frames among each video's first N frames from
    its first annotated one (a quick check of a run made with the same limit, not the benchmark).
    """
    started = time.perf_counter()
    if max_frames is not None and max_frames < 1:
        raise InoError(f"max_frames must be >= 1, got {max_frames}")
    layout = VipLayout(Path(vip_root))
    results = Path(results)
    if not results.is_dir():
        raise InoError(f"{results}: results folder not found")
    names = list(videos) if videos else layout.videos(set_name, list_file)
    tasks = []
    for name in names:
        video = layout.video(name)
        tasks.append(_Task(video, results / name, allow_missing, scored_annotations(video, max_frames)))
    workers = workers or os.cpu_count() or 1
    matrices = _run(tasks, workers, progress)
    scores = [VideoScores(t.video.name, [p.stem for p in t.scored], m) for t, m in zip(tasks, matrices, strict=True)]
    evaluation = VipEvaluation(scores)
    if evaluation.confusion.sum() == 0:
        raise InoError(f"{layout.root}: no ground-truth pixel with a class id 0..{N_CLASSES - 1} in the scored frames")
    evaluation.protocol = {
        "task": "VIP part propagation (CRW code/eval/eval_vip.py definitions)",
        "vip_root": str(layout.root),
        "results": str(results),
        "set": set_name,
        "list": str(list_file) if list_file is not None else str(layout.list_file(set_name)),
        "videos": names,
        "classes": N_CLASSES,
        "frames_scored": "every annotated frame of every video, the first annotated frame included"
        + ("" if max_frames is None else f", among the first {max_frames} frames (truncated, not the benchmark)"),
        "max_frames": max_frames,
        "resize": "predictions resized to the ground-truth size, PIL nearest neighbour",
        "ignored": f"ground-truth pixels outside 0..{N_CLASSES - 1} (VIP's {IGNORE_ID}) count nowhere",
        "aggregation": "one 20 x 20 confusion matrix over all scored frames; IoU per class; mean over the classes "
        "present in ground truth or predictions (0/0 classes skipped, as np.nanmean), background included",
        "allow_missing": allow_missing,
        "n_frames": sum(len(s.frames) for s in scores),
        "n_pixels": int(evaluation.confusion.sum()),
        "workers": workers,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return evaluation
