"""Speed of ``ino evaluate``: end to end as a user runs it (a new process, start-up included) and in-process.

The official davis2017-evaluation toolkit needs about 22 ms per frame-object on the project's 2-core CPU machine
(measured when the stack was chosen); the target is at least 8x that, end to end, on the real dev set.

    python benchmarks/bench_evaluate.py [--davis-dev ../shared/data/davis-dev] [--work /tmp/ino-bench-eval]

Predictions are imperfect on purpose (dilated ground truth for the dev set, the first-frame-copy baseline for the
generated set), so every object has real boundaries to match. "end to end" runs the ``ino`` console script next to
this Python (``python -m ino`` when there is none) with ``--quiet``: interpreter start-up, imports, PNG reading,
scoring, and every output file (CSVs, JSON, the PNG chart). "in-process" times the library call alone (reading PNGs
included). Each is the best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
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


def _command() -> list[str]:
    script = Path(sys.executable).with_name("ino")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ino"]


def _best(run, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def _report(label: str, how: str, seconds: float, count: int) -> None:
    ms = 1000 * seconds / count
    print(
        f"{label:<34} {how:<22} {count:5d} frame-objects  {seconds:6.2f} s  {count / seconds:7.1f} frame-objects/s"
        f"  {ms:5.2f} ms each  {OFFICIAL_MS_PER_FRAME_OBJECT / ms:4.1f}x the official toolkit"
    )


def _time(label: str, davis_root: Path, results: Path, work: Path, repeats: int) -> None:
    count = evaluate(davis_root, results).protocol["n_frame_objects"]
    cores = os.cpu_count() or 1
    for workers in sorted({1, cores}):
        seconds = _best(lambda w=workers: evaluate(davis_root, results, workers=w), repeats)
        _report(label, f"in-process, {workers} thr", seconds, count)
    out = work / "evaluate-out"
    command = [*_command(), "evaluate", "--davis-root", str(davis_root), "--results", str(results)]
    command += ["--out", str(out), "--quiet"]

    def end_to_end() -> None:
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    _report(label, f"end to end, {cores} thr", _best(end_to_end, repeats), count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_dev = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis-dev"
    parser.add_argument("--davis-dev", type=Path, default=default_dev)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ino-bench-eval"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        f"CPU cores: {os.cpu_count()}; reference: official toolkit ~{OFFICIAL_MS_PER_FRAME_OBJECT} ms per frame-object"
    )
    print(f"end to end: {' '.join(_command())} evaluate ... --quiet")

    if (args.davis_dev / "Annotations").is_dir():
        predictions = _dilated_predictions(args.davis_dev, args.work / "dev-dilated")
        _time("davis-dev (6 seq, 854x480)", args.davis_dev, predictions, args.work, args.repeats)
    else:
        print(f"skipping the real dev set: {args.davis_dev} not found")

    synth = args.work / "synth30"
    if not (synth / "ImageSets").is_dir():
        names = write_benchmark(synth, 30, SynthConfig(height=480, width=854, frames=30), seed=0)
        write_first_frame_baseline(DavisLayout(synth, RESOLUTION), names, args.work / "synth30-baseline")
    _time("generated (30 seq x 30, 854x480)", synth, args.work / "synth30-baseline", args.work, args.repeats)


if __name__ == "__main__":
    main()
