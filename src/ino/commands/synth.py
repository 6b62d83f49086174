"""``ino synth``: a deterministic synthetic DAVIS-2017-layout benchmark."""

from __future__ import annotations

from jsonargparse import ArgumentParser, Namespace

from ino.errors import InoError

SUMMARY = "generate a synthetic DAVIS-format benchmark"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Generate a synthetic DAVIS-2017-layout benchmark (deterministic).")
    parser.add_argument("--out", required=True, help="output DAVIS-layout folder")
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--baseline-out", default=None, help="also write first-frame-copy predictions here")
    return parser


def run(args: Namespace) -> None:
    from ino.baselines import write_first_frame_baseline
    from ino.data.davis import DavisLayout
    from ino.data.synthetic import RESOLUTION, SynthConfig, write_benchmark

    if args.sequences < 1 or args.frames < 3 or min(args.height, args.width) < 16:
        raise InoError("--sequences must be >= 1, --frames >= 3, --height and --width >= 16")
    config = SynthConfig(height=args.height, width=args.width, frames=args.frames)
    names = write_benchmark(args.out, args.sequences, config, args.seed)
    print(f"wrote {len(names)} sequences x {args.frames} frames to {args.out}")
    if args.baseline_out:
        write_first_frame_baseline(DavisLayout(args.out, RESOLUTION), names, args.baseline_out)
        print(f"wrote first-frame baseline predictions to {args.baseline_out}")
