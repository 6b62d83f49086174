"""The registry's callables that fit ``ino``'s runs and scorers to the suite's two shapes (:mod:`ino.suite.tasks`).

Every scorer writes its usual report files into the task's folder (the official DAVIS CSVs, ``pck.json``,
``vip_results-val.json``) and returns the headline numbers in percent, with the headline metric per sequence or
video. YouTube-VOS has no local score: its entry is the archive for the evaluation server, identified by size and
SHA-256 so that the table names exactly what was submitted.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ino.propagation.api import VideoPropagator
    from ino.utils.distributed import Distributed

#: the split the DAVIS and VIP scorers read (ImageSets/2017/val.txt, lists/val_videos.txt)
SET_NAME = "val"


@dataclass
class TaskScores:
    """One task's scores for one model: headline ``metrics`` and the headline metric ``per_item`` (percent; None
    where undefined), the report ``files`` written next to the predictions, the ``server`` archive (YouTube-VOS),
    and the scorer's own ``protocol`` record."""

    metrics: dict[str, float | None]
    per_item: dict[str, float | None]
    files: list[str]
    server: dict[str, object] | None = None
    protocol: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "metrics": self.metrics,
            "per_item": self.per_item,
            "files": self.files,
            "server": self.server,
            "protocol": self.protocol,
        }


def _percent(value: float | None, scale: float = 100.0) -> float | None:
    """``value * scale``, None for a missing or NaN value (JSON has no NaN)."""
    return None if value is None or math.isnan(value) else float(value) * scale


def _names(paths: dict[str, Path], folder: Path) -> list[str]:
    return [str(Path(p).relative_to(folder)) for p in paths.values()]


def score_davis(root: Path, results: Path, names: list[str], *, max_frames: int | None, progress: bool) -> TaskScores:
    """DAVIS-2017 J&F (:func:`ino.evaluation.scorer.evaluate`), truncated to ``max_frames`` for a quick check."""
    from ino.evaluation.report import write_outputs
    from ino.evaluation.scorer import evaluate

    evaluation = evaluate(root, results, set_name=SET_NAME, sequences=names, progress=progress, max_frames=max_frames)
    paths = write_outputs(evaluation, results, SET_NAME)
    scores = evaluation.global_results()
    return TaskScores(
        metrics={key: _percent(scores[key]) for key in ("J&F-Mean", "J-Mean", "F-Mean")},
        per_item={name: _percent(value) for name, value in evaluation.sequence_jf().items()},
        files=_names(paths, Path(results)),
        protocol=evaluation.protocol,
    )


def score_jhmdb(root: Path, results: Path, names: list[str], *, max_frames: int | None, progress: bool) -> TaskScores:
    """JHMDB PCK (:func:`ino.evaluation.pck.evaluate_pck`), already in percent; ``max_frames`` for a quick check."""
    from ino.evaluation.pck import evaluate_pck, write_pck_outputs

    evaluation = evaluate_pck(root, results, videos=names, max_frames=max_frames)
    paths = write_pck_outputs(evaluation, results)
    scores = evaluation.global_results()
    return TaskScores(
        metrics={key: _percent(scores[key], 1.0) for key in ("PCK@0.1", "PCK@0.2")},
        per_item={name: _percent(values["PCK@0.1"], 1.0) for name, values in evaluation.video_results().items()},
        files=_names(paths, Path(results)),
        protocol=evaluation.protocol,
    )


def score_vip(root: Path, results: Path, names: list[str], *, max_frames: int | None, progress: bool) -> TaskScores:
    """VIP part mIoU (:func:`ino.evaluation.vip.evaluate_vip`); ``max_frames`` for a quick check."""
    from ino.evaluation.vip import evaluate_vip
    from ino.evaluation.vip_report import write_vip_outputs

    evaluation = evaluate_vip(root, results, set_name=SET_NAME, videos=names, progress=progress, max_frames=max_frames)
    paths = write_vip_outputs(evaluation, results, SET_NAME)
    return TaskScores(
        metrics={"mIoU": _percent(evaluation.miou())},
        per_item={name: _percent(value) for name, value in evaluation.video_miou().items()},
        files=_names(paths, Path(results)),
        protocol=evaluation.protocol,
    )


def score_ytvos(root: Path, results: Path, names: list[str], *, max_frames: int | None, progress: bool) -> TaskScores:
    """No local score: the archive to upload to the YouTube-VOS 2018 server, with its size and SHA-256."""
    archive = Path(results) / "Annotations.zip"
    digest = hashlib.sha256()
    with archive.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    server = {
        "file": archive.name,
        "bytes": archive.stat().st_size,
        "sha256": digest.hexdigest(),
        "videos": len(names),
        "server": "YouTube-VOS 2018 validation, CodaLab (competitions.codalab.org/competitions/19544)",
    }
    return TaskScores(metrics={}, per_item={}, files=[archive.name], server=server)


def propagate_ytvos_task(
    root: Path,
    out: Path,
    propagator: VideoPropagator,
    settings: dict[str, object],
    *,
    all_frames: str | None = None,
    progress: bool = True,
    dist: Distributed | None = None,
) -> list[str]:
    """:func:`ino.propagation.runs.propagate_ytvos` in the suite's shape: a root (``valid/``) and the videos."""
    from ino.data.davis import YtvosLayout
    from ino.propagation.runs import propagate_ytvos

    layout = YtvosLayout(Path(root), Path(all_frames) if all_frames else None)
    propagate_ytvos(layout, out, propagator, settings, progress=progress, dist=dist)
    return layout.videos()
