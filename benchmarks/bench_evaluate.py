"""Speed of ``ino evaluate``: seconds and frame-objects/s on the real dev set and on a 30-sequence generated set.

The official davis2017-evaluation toolkit needs about 22 ms per frame-object on the project's 2-core CPU machine
(measured when the stack was chosen, see ../shared/docs/stack.md); the target is at least 5x faster.

    python benchmarks/bench_evaluate.py [--davis-dev ../shared/data/davis-dev] [--work /tmp/ino-bench-eval]

Predictions are imperfect on purpose (dilated ground truth for the dev set, the first-frame-copy baseline for the
generated set), so every object has real boundaries to match. Each configuration is timed end to end through the
library call (reading PNGs included), best of 3 runs.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from ino.data.davis import DavisLayout, read_mask, write_mask
from ino.data.synthetic import RESOLUTION, SynthConfig, write_benchmark
from ino.evaluation.scorer import evaluate
from ino.propagation.baselines import write_first_frame_baseline

OFFICIAL_MS_PER_FRAME_OBJECT = 22.0


def _dilated_predictions(davis_root: Path, out: Path) -> Path:
    layout = DavisLayout(davis_root)
    for name in layout.sequences():
        for frame in layout.annotation_frames(name):
            gt = read_mask(layout.annotation_dir(name) / f"{frame}.png")
            write_mask(out / name / f"{frame}.png", cv2.dilate(gt, np.ones((9, 9), np.uint8)))
    return out


def _time(label: str, davis_root: Path, results: Path, workers: int) -> None:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        evaluation = evaluate(davis_root, results, workers=workers)
        best = min(best, time.perf_counter() - started)
    count = evaluation.protocol["n_frame_objects"]
    ms = 1000 * best / count
    print(
        f"{label:<34} workers={workers}  {count:5d} frame-objects  {best:6.2f} s  {count / best:7.1f} frame-objects/s"
        f"  {ms:5.2f} ms each  {OFFICIAL_MS_PER_FRAME_OBJECT / ms:4.1f}x the official toolkit"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_dev = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis-dev"
    parser.add_argument("--davis-dev", type=Path, default=default_dev)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ino-bench-eval"))
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"CPU cores: {cores}; reference: official toolkit ~{OFFICIAL_MS_PER_FRAME_OBJECT} ms per frame-object")

    if (args.davis_dev / "Annotations").is_dir():
        predictions = _dilated_predictions(args.davis_dev, args.work / "dev-dilated")
        for workers in sorted({1, cores}):
            _time("davis-dev (6 seq, 854x480)", args.davis_dev, predictions, workers)
    else:
        print(f"skipping the real dev set: {args.davis_dev} not found")

    synth = args.work / "synth30"
    if not (synth / "ImageSets").is_dir():
        names = write_benchmark(synth, 30, SynthConfig(height=480, width=854, frames=30), seed=0)
        write_first_frame_baseline(DavisLayout(synth, RESOLUTION), names, args.work / "synth30-baseline")
    for workers in sorted({1, cores}):
        _time("generated (30 seq x 30, 854x480)", synth, args.work / "synth30-baseline", workers)


if __name__ == "__main__":
    main()
