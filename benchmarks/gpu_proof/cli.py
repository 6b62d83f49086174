"""One command, at most ~9 minutes on one H100/H200, that measures what the project claims and writes
``results.md`` and ``results.json`` (default: ``docs/``):

(a) training throughput at the paper's settings (ViT-S/8, clips of 4 frames, 8 local crops, bf16) for 8/16/32/64
    clips per step, eager and ``torch.compile``d: clips/s, FLOPs per clip (``FlopCounterMode``), MFU, a profile of
    a step, and the data loader's clips/s by worker count on ``ino prepare``d copies of the clips;
(b) label propagation at 480p, features included, fp32 and bf16: frames/s, peak memory, time for 2,000 frames;
(c) INO from scratch (ViT-S/8) for 4 minutes on ``<data>/videos``, propagated on ``<data>/davis-dev`` and scored
    with DAVIS J&F against the same random init.

    python benchmarks/gpu_proof.py --stage gpu-data           # here, with PyAV: copy + `ino prepare` the data
    PYTHONPATH=src python benchmarks/gpu_proof.py --data gpu-data --out $OUT    # on the GPU machine
    PYTHONPATH=src python benchmarks/gpu_proof.py --smoke     # every part on the CPU at tiny sizes (< 2 min)

Why it is built this way: GPU time is scarce and one run must succeed. Inputs are checked before any GPU work;
every part and measurement runs under a deadline carved from ``--budget-s`` (one that would overrun is recorded as
skipped); an exception is recorded (type, message, traceback tail) and the run goes on; both files are rewritten
atomically after every measurement, so a run killed at its time limit still leaves what it measured. The
compiled-throughput points run last: a compile cannot be interrupted, so an unexpectedly long one can only cost
itself. The GPU image has neither PyAV nor jsonargparse: this script needs neither (videos are read with OpenCV).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from . import parts, report
from . import phases as run_phases
from .inputs import REPO, SHARED_DATA, InputError, check_inputs, stage
from .record import Run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data",
        type=Path,
        default=SHARED_DATA,
        help="folder with videos/ or videos-320p/ and davis-dev/ (default: ../shared/data)",
    )
    parser.add_argument(
        "--out", type=Path, help="where results.json and results.md go (default: docs/; with --smoke: gpu-proof-smoke/)"
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "gpu-proof-work",
        help="scratch folder (a fresh subfolder per run): prepared copies, the training run, predictions",
    )
    parser.add_argument("--smoke", action="store_true", help="every part on the CPU at tiny sizes: smoke numbers")
    parser.add_argument("--device", help="default: cuda when available (cpu with --smoke)")
    parser.add_argument("--budget-s", type=float, help="overall wall-clock budget (default 540; 100 with --smoke)")
    parser.add_argument("--train-s", type=float, help="part c's training budget (default 240; 8 with --smoke)")
    parser.add_argument("--parts", default="a,b,c", help="comma-separated subset of a,b,c")
    parser.add_argument("--peak-tflops", type=float, help="bf16 dense peak for MFU when the GPU is not known")
    parser.add_argument("--min-videos", type=int, help="fewest training videos accepted (default 8; 2 with --smoke)")
    parser.add_argument(
        "--stage",
        type=Path,
        help="only copy davis-dev and `ino prepare` the videos from --data "
        "into this folder (needs PyAV), for carrying to a GPU machine; then exit",
    )
    args = parser.parse_args(argv)
    args.parts = [p for p in "abc" if p in {x.strip() for x in args.parts.split(",")}]
    if not args.parts:
        parser.error("--parts names none of a, b, c")
    args.budget_s = args.budget_s or (100.0 if args.smoke else 540.0)
    args.min_videos = args.min_videos or (2 if args.smoke else 8)
    args.device = args.device or ("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    args.out = args.out or (REPO / "gpu-proof-smoke" if args.smoke else REPO / "docs")
    return args


def phases(args: argparse.Namespace, sizes: parts.Sizes) -> list[tuple[str, str, float]]:
    """(phase, part, reserve_s): the order of the run and the seconds each phase keeps for itself. A phase's
    deadline is the overall end minus the reserves of the phases after it, so time one does not use flows on."""
    scale = 1.0 if not args.smoke else 0.25
    plan = [
        ("a", "a", 80.0 * scale),
        ("b", "b", 40.0 * scale),
        ("c", "c", sizes.train_s + 50.0 * scale),
        ("a-compiled", "a", sizes.compile_need_s),
    ]
    return [phase for phase in plan if phase[1] in args.parts]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    if args.smoke:
        # one thread: on a small shared CPU, OpenMP threads spin-waiting for a busy core made tiny steps 100x slower
        torch.set_num_threads(1)
    sizes = parts.SMOKE if args.smoke else parts.GPU
    if args.train_s:
        sizes = replace(sizes, train_s=args.train_s)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = args.work / f"run-{stamp}-{os.getpid()}"
    try:
        if args.stage:
            return stage(args)
        if not args.data.is_dir() and not args.smoke:
            raise InputError(f"--data {args.data}: no such folder")
        if not args.smoke and args.device == "cpu":
            raise InputError("full sizes need a CUDA GPU (no CUDA device here); --smoke runs every part on the CPU")
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError(f"--device {args.device}: no CUDA device visible")
        work.mkdir(parents=True)
        inputs = check_inputs(args, work)
    except InputError as error:
        shutil.rmtree(work, ignore_errors=True)  # this run's own, fresh folder
        print(f"gpu_proof: error: {error}", file=sys.stderr)
        return 2
    run = Run(args, sizes, inputs, work, started + args.budget_s)
    run.save()
    plan = phases(args, sizes)
    for i, (phase, part, _) in enumerate(plan):
        deadline = run.end - sum(reserve for _, _, reserve in plan[i + 1 :])
        mark = time.perf_counter()
        try:
            with parts.quiet_logs():
                run_phases.PHASES[phase](run, deadline)
        except Exception as error:  # a bug between measurements: recorded, and the next phase still runs
            run.record["parts"][part][f"phase {phase}"] = {"error": parts.describe_error(error)}
            print(f"gpu_proof: phase {phase} failed: {type(error).__name__}: {error}", file=sys.stderr)
        run.record["wall_s"][phase] = time.perf_counter() - mark
        run.save()
    run.record["wall_s"]["total"] = time.monotonic() - started
    run.save()
    errors = report.errors(run.record)
    print(
        f"gpu_proof: wrote {args.out / 'results.json'} and results.md in {time.monotonic() - started:.0f} s"
        + (f"; {len(errors)} measurement(s) failed: {', '.join(errors)}" if errors else "")
    )
    return 1 if errors else 0
