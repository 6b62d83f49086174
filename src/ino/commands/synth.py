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
    # difficulty knobs (see ino.data.synthetic.SynthConfig)
    parser.add_argument("--min-objects", type=int, default=2, help="objects per sequence, at least")
    parser.add_argument("--max-objects", type=int, default=4, help="objects per sequence, at most")
    parser.add_argument("--max-speed", type=float, default=4.0, help="object speed, pixels per frame")
    parser.add_argument("--max-rotation-deg", type=float, default=4.0, help="object rotation, degrees per frame")
    parser.add_argument("--max-scale-rate", type=float, default=0.015, help="object growth/shrink per frame")
    parser.add_argument("--background-speed", type=float, default=1.5, help="background pan, pixels per frame")
    parser.add_argument("--brightness-drift", type=float, default=0.0, help="peak relative brightness change (< 1)")
    parser.add_argument("--max-blur", type=float, default=0.0, help="per-frame Gaussian blur sigma, at most (px)")
    parser.add_argument("--frame-noise", type=float, default=0.0, help="fresh Gaussian noise per frame, sigma")
    return parser


def run(args: Namespace) -> None:
    from ino.baselines import write_first_frame_baseline
    from ino.data.davis import DavisLayout
    from ino.data.synthetic import RESOLUTION, SynthConfig, write_benchmark

    if args.sequences < 1 or args.frames < 3 or min(args.height, args.width) < 16:
        raise InoError("--sequences must be >= 1, --frames >= 3, --height and --width >= 16")
    if not 1 <= args.min_objects <= args.max_objects:
        raise InoError("--min-objects and --max-objects must satisfy 1 <= min <= max")
    if min(args.max_speed, args.max_rotation_deg, args.max_scale_rate, args.background_speed) < 0:
        raise InoError("speeds, rotation and scale rate must be >= 0")
    if not 0 <= args.brightness_drift < 1 or min(args.max_blur, args.frame_noise) < 0:
        raise InoError("--brightness-drift must lie in [0, 1), --max-blur and --frame-noise must be >= 0")
    config = SynthConfig(
        height=args.height,
        width=args.width,
        frames=args.frames,
        min_objects=args.min_objects,
        max_objects=args.max_objects,
        max_speed=args.max_speed,
        max_rotation_deg=args.max_rotation_deg,
        max_scale_rate=args.max_scale_rate,
        background_speed=args.background_speed,
        brightness_drift=args.brightness_drift,
        max_blur=args.max_blur,
        frame_noise=args.frame_noise,
    )
    names = write_benchmark(args.out, args.sequences, config, args.seed)
    print(f"wrote {len(names)} sequences x {args.frames} frames to {args.out}")
    if args.baseline_out:
        write_first_frame_baseline(DavisLayout(args.out, RESOLUTION), names, args.baseline_out)
        print(f"wrote first-frame baseline predictions to {args.baseline_out}")
