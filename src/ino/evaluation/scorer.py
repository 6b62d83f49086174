"""DAVIS-2017 semi-supervised evaluation: the official protocol (docs/method.md §8), in parallel, always recomputed.

Protocol, as davis2017-evaluation: the object count of a sequence is the largest id in its first ground-truth
frame; the first and last frames are not scored; ground-truth void (255) is background; a predicted object that
is absent counts as an empty mask, and a predicted id above the object count is an error; per object,
J and F give Mean, Recall (fraction of frames > 0.5) and Decay (first minus last of four overlapping bins);
global numbers are plain means over all objects, and J&F-Mean is the mean of J-Mean and F-Mean.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ino.data.davis import DavisLayout, read_mask, read_object_ids
from ino.errors import InoError
from ino.evaluation.metrics import frame_scores, statistics
from ino.utils.pools import worker_pool

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
FRAMES_PER_TASK = 8
FREED_MEMORY_KEPT = 64 << 20
_M_TOP_PAD = -2  # glibc's mallopt parameter: bytes of free heap kept when trimming


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep 64 MB of freed heap for reuse instead of handing it back to the system.

    Scoring a frame allocates and frees a few arrays of about 0.4 MB (decoded PNGs, crops, padded lines). By
    default glibc returns such memory at once and page-faults it back for the next frame: that was a quarter of
    the CPU time of ``ino evaluate`` (docs/evaluation.md#speed). The setting is process-wide and lasting (the
    process may hold up to 64 MB more than it needs), so the library never calls it on its caller's behalf: the
    ``ino evaluate`` command does. Returns whether it was applied: not with another C library.
    """
    try:
        os.confstr("CS_GNU_LIBC_VERSION")
        mallopt = ctypes.CDLL(None).mallopt
    except (ValueError, OSError, AttributeError):
        return False
    return mallopt(_M_TOP_PAD, FREED_MEMORY_KEPT) == 1


@dataclass(frozen=True)
class _FrameBatch:
    """A few consecutive scored frames of one sequence: the unit of parallel work."""

    sequence: str
    frames: tuple[str, ...]
    gt_dir: Path
    results_dir: Path
    n_objects: int
    allow_missing: bool


@dataclass
class SequenceScores:
    """Per-frame J and F, shape (scored frames, objects), of one sequence."""

    name: str
    frames: list[str]
    j: np.ndarray
    f: np.ndarray

    @property
    def n_objects(self) -> int:
        return self.j.shape[1]

    def object_statistics(self) -> list[dict[str, float]]:
        """Mean / Recall / Decay of J and F for each object, in id order."""
        rows = []
        for k in range(self.n_objects):
            jm, jr, jd = statistics(self.j[:, k])
            fm, fr, fd = statistics(self.f[:, k])
            rows.append({"J-Mean": jm, "J-Recall": jr, "J-Decay": jd, "F-Mean": fm, "F-Recall": fr, "F-Decay": fd})
        return rows


@dataclass
class Evaluation:
    """Scores of every sequence plus the protocol that produced them."""

    sequences: list[SequenceScores]
    protocol: dict[str, object] = field(default_factory=dict)

    def object_rows(self) -> list[tuple[str, dict[str, float]]]:
        """(``<sequence>_<id>``, statistics) for every object, as the official per-sequence CSV lists them."""
        return [
            (f"{scores.name}_{k + 1}", row)
            for scores in self.sequences
            for k, row in enumerate(scores.object_statistics())
        ]

    def global_results(self) -> dict[str, float]:
        """The official global table: object-weighted means, J&F-Mean = (J-Mean + F-Mean) / 2."""
        rows = [row for _, row in self.object_rows()]
        means = {name: float(np.mean([row[name] for row in rows])) for name in GLOBAL_COLUMNS[1:]}
        return {"J&F-Mean": (means["J-Mean"] + means["F-Mean"]) / 2, **means}

    def sequence_jf(self) -> dict[str, float]:
        """Per-sequence J&F-Mean (mean over its objects of (J-Mean + F-Mean) / 2), for plots and summaries."""
        result = {}
        for scores in self.sequences:
            rows = scores.object_statistics()
            result[scores.name] = float(np.mean([(r["J-Mean"] + r["F-Mean"]) / 2 for r in rows]))
        return result


def _read_prediction(batch: _FrameBatch, frame: str, shape: tuple[int, ...]) -> np.ndarray:
    path = batch.results_dir / f"{frame}.png"
    where = f"sequence {batch.sequence!r}, frame {frame}"
    if not path.is_file():
        if batch.allow_missing:
            return np.zeros(shape, dtype=np.uint8)
        raise InoError(f"{where}: prediction {path} is missing (--allow-missing scores it as empty)")
    try:
        pred = read_mask(path)
    except InoError as error:
        raise InoError(f"{where}: {error}") from None
    if pred.shape != shape:
        raise InoError(
            f"{where}: prediction {path} is {pred.shape[1]}x{pred.shape[0]} (WxH) "
            f"but the ground truth is {shape[1]}x{shape[0]}"
        )
    largest = int(pred.max(initial=0))
    if largest > batch.n_objects:
        raise InoError(
            f"{where}: prediction {path} contains object id {largest}, absent from the first ground-truth frame "
            f"(which has {batch.n_objects} object{'s' if batch.n_objects != 1 else ''})"
        )
    return pred


def _score_batch(batch: _FrameBatch) -> tuple[np.ndarray, np.ndarray]:
    """J and F, shape (len(frames), objects), of one batch; runs in a worker thread."""
    j = np.empty((len(batch.frames), batch.n_objects))
    f = np.empty_like(j)
    for row, frame in enumerate(batch.frames):
        try:
            gt = read_object_ids(batch.gt_dir / f"{frame}.png")
        except InoError as error:
            raise InoError(f"sequence {batch.sequence!r}, frame {frame}: {error}") from None
        pred = _read_prediction(batch, frame, gt.shape)
        j[row], f[row] = frame_scores(gt, pred, batch.n_objects)
    return j, f


def _plan(
    layout: DavisLayout, results: Path, names: Sequence[str], allow_missing: bool, max_frames: int | None
) -> tuple[list[_FrameBatch], dict[str, list[str]]]:
    """Split every sequence's scored frames (all but first and last) into batches."""
    batches: list[_FrameBatch] = []
    scored: dict[str, list[str]] = {}
    for name in names:
        frames = layout.annotation_frames(name)[:max_frames]
        if len(frames) < 3:
            raise InoError(
                f"sequence {name!r}: {len(frames)} annotated frame(s); the protocol scores all but the first "
                "and last, so at least 3 are needed"
            )
        first = read_object_ids(layout.annotation_dir(name) / f"{frames[0]}.png")
        n_objects = int(first.max())
        if n_objects == 0:
            raise InoError(f"sequence {name!r}, frame {frames[0]}: the first ground-truth frame has no object")
        scored[name] = frames[1:-1]
        for start in range(0, len(scored[name]), FRAMES_PER_TASK):
            chunk = tuple(scored[name][start : start + FRAMES_PER_TASK])
            batches.append(
                _FrameBatch(name, chunk, layout.annotation_dir(name), results / name, n_objects, allow_missing)
            )
    return batches, scored


def _run(batches: list[_FrameBatch], workers: int, progress: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Score batches in order, in forked processes where that is safe, else threads (:mod:`ino.utils.pools`)."""
    outputs = []
    with contextlib.ExitStack() as stack:
        bar = None
        if progress:  # tqdm is imported only then: it costs ~0.05 s of a ~0.5 s ``--quiet`` run
            from tqdm import tqdm

            bar = stack.enter_context(tqdm(total=sum(len(b.frames) for b in batches), unit="frame", desc="scoring"))
        if workers <= 1 or len(batches) <= 1:
            scored = map(_score_batch, batches)
        else:
            pool = stack.enter_context(worker_pool(min(workers, len(batches))))
            scored = pool.map(_score_batch, batches)
        for batch, output in zip(batches, scored, strict=True):
            outputs.append(output)
            if bar is not None:
                bar.update(len(batch.frames))
    return outputs


def evaluate(
    davis_root: str | Path,
    results: str | Path,
    set_name: str = "val",
    resolution: str = "480p",
    workers: int | None = None,
    allow_missing: bool = False,
    sequences: Sequence[str] | None = None,
    progress: bool = False,
    max_frames: int | None = None,
) -> Evaluation:
    """Score the predictions in ``results/<sequence>/<frame>.png`` against a DAVIS-layout ground truth.

    ``max_frames`` truncates every sequence to its first N annotated frames before the protocol's first/last
    exclusion (to score a quick ``ino propagate --max-frames N`` run); None is the official protocol. A process
    that scores many sequences may first call :func:`keep_freed_memory` (``ino evaluate`` does).
    """
    if max_frames is not None and max_frames < 3:
        raise InoError(f"max_frames must be >= 3 (the first and last frames are not scored), got {max_frames}")
    started = time.perf_counter()
    layout = DavisLayout(Path(davis_root), resolution)
    results = Path(results)
    if not results.is_dir():
        raise InoError(f"{results}: results folder not found")
    names = list(sequences) if sequences else layout.sequences(set_name)
    workers = workers or os.cpu_count() or 1
    batches, scored = _plan(layout, results, names, allow_missing, max_frames)
    outputs = _run(batches, workers, progress)
    per_sequence: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in names}
    for batch, output in zip(batches, outputs, strict=True):
        per_sequence[batch.sequence].append(output)
    scores = [
        SequenceScores(
            name,
            scored[name],
            np.concatenate([j for j, _ in per_sequence[name]]),
            np.concatenate([f for _, f in per_sequence[name]]),
        )
        for name in names
    ]
    n_frame_objects = sum(s.j.size for s in scores)
    protocol = {
        "task": "semi-supervised (davis2017-evaluation definitions)",
        "davis_root": str(layout.root),
        "results": str(results),
        "set": set_name,
        "resolution": resolution,
        "sequences": names,
        "frames_scored": "all annotated frames except the first and the last"
        + ("" if max_frames is None else f" of the first {max_frames} (truncated sequences, not the benchmark)"),
        "objects": "ids 1..max id of the first ground-truth frame; absent predictions count as empty",
        "void": "ground-truth 255 treated as background, as the official semi-supervised path",
        "boundary_tolerance": "ceil(0.008 * image diagonal) px, Euclidean disk",
        "recall_threshold": 0.5,
        "decay": "mean of bin 1 - mean of bin 4, 4 overlapping bins (int64 edges)",
        "aggregation": "plain mean over all objects of all sequences",
        "allow_missing": allow_missing,
        "n_objects": sum(s.n_objects for s in scores),
        "n_frame_objects": n_frame_objects,
        "workers": workers,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return Evaluation(scores, protocol)
