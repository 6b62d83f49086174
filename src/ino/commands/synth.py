"""``ino synth``: a deterministic synthetic DAVIS-2017-layout benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path

from ino.commands._args import int_at_least, non_negative_float, non_negative_int, positive_int, unit_interval_open

SUMMARY = "generate a synthetic DAVIS-, VIP- or JHMDB-format benchmark"
DESCRIPTION = (
    "Generate a deterministic synthetic benchmark with exact ground truth: DAVIS-2017 layout (masks; "
    "docs/experiments.md uses it), VIP_Fine (part labels) or JHMDB (joints; docs/evaluation.md). --out may be new "
    "or hold an earlier benchmark of ino synth, which is replaced; a folder holding another dataset is refused."
)


def _object_count(text: str) -> int:
    value = positive_int(text)
    if value > 254:
        raise argparse.ArgumentTypeError(f"must be <= 254 (ids 1..254 fit a DAVIS mask; 255 is void), got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (DAVIS, VIP_Fine or JHMDB layout)")
    parser.add_argument(
        "--format",
        choices=("davis", "vip", "jhmdb"),
        default="davis",
        help="davis: objects and masks; vip: VIP_Fine layout, walking figures with part labels on key frames "
        "(uses --sequences, --frames, --seed, --height, --width only); jhmdb: stick figures with exact joints "
        "(uses --sequences, --frames, --seed, --height, --width, --max-speed)",
    )
    parser.add_argument("--sequences", type=positive_int, default=8)
    parser.add_argument("--frames", type=int_at_least(3), default=24, help="frames per sequence (>= 3)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--height", type=int_at_least(16), default=180)
    parser.add_argument("--width", type=int_at_least(16), default=320)
    parser.add_argument("--baseline-out", default=None, help="also write first-frame-copy predictions here")
    # difficulty knobs (see ino.data.synthetic.SynthConfig)
    parser.add_argument("--min-objects", type=_object_count, default=2, help="objects per sequence, at least")
    parser.add_argument("--max-objects", type=_object_count, default=4, help="objects per sequence, at most")
    parser.add_argument("--max-speed", type=non_negative_float, default=4.0, help="object speed, pixels per frame")
    parser.add_argument("--max-rotation-deg", type=non_negative_float, default=4.0, help="degrees per frame")
    parser.add_argument("--max-scale-rate", type=non_negative_float, default=0.015, help="growth/shrink per frame")
    parser.add_argument("--background-speed", type=non_negative_float, default=1.5, help="pan, pixels per frame")
    parser.add_argument("--brightness-drift", type=unit_interval_open, default=0.0, help="peak relative change")
    parser.add_argument("--max-blur", type=non_negative_float, default=0.0, help="per-frame blur sigma, at most (px)")
    parser.add_argument("--frame-noise", type=non_negative_float, default=0.0, help="fresh noise per frame, sigma")


def run(args: argparse.Namespace) -> None:
    if args.format != "davis":
        {"vip": _run_vip, "jhmdb": _run_jhmdb}[args.format](args)
        return
    from ino.data.davis import DavisLayout
    from ino.data.synthetic import RESOLUTION, SynthConfig, sequence_name, write_benchmark
    from ino.errors import InoError
    from ino.propagation.baselines import write_first_frame_baseline
    from ino.utils.outputs import claim_folder, refuse_inside, renew

    if args.min_objects > args.max_objects:
        raise InoError(f"--min-objects {args.min_objects} exceeds --max-objects {args.max_objects}")
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
    layout = DavisLayout(args.out, RESOLUTION)
    baseline = Path(args.baseline_out) if args.baseline_out else None
    if baseline is not None:  # checked before any work: the benchmark's own truth, or folders ino did not make
        refuse_inside(baseline, layout.data_folders(), "--baseline-out")
        for name in map(sequence_name, range(args.sequences)):
            claim_folder(baseline / name)
    names = write_benchmark(args.out, args.sequences, config, args.seed)
    print(f"wrote {len(names)} sequences x {args.frames} frames to {args.out}")
    if baseline is not None:
        for name in names:
            renew(baseline / name)  # marked: a later run may replace it
        write_first_frame_baseline(layout, names, baseline)
        print(f"wrote first-frame baseline predictions to {args.baseline_out}")


def _run_vip(args: argparse.Namespace) -> None:
    from ino.data.synthetic_vip import SynthVipConfig, write_vip_benchmark
    from ino.errors import InoError

    if args.baseline_out:
        raise InoError("--baseline-out writes DAVIS masks; it does not apply to --format vip")
    config = SynthVipConfig(height=args.height, width=args.width, frames=args.frames)
    names = write_vip_benchmark(args.out, args.sequences, config, args.seed)
    every = config.key_every
    print(f"wrote {len(names)} VIP-layout videos x {args.frames} frames (annotated every {every}) to {args.out}")


def _run_jhmdb(args: argparse.Namespace) -> None:
    """``--format jhmdb``: the JHMDB-layout keypoint benchmark (docs/evaluation.md, "JHMDB")."""
    from ino.data.synthetic_jhmdb import LIST_NAME, JhmdbSynthConfig, write_jhmdb_benchmark
    from ino.errors import InoError

    if args.baseline_out:
        raise InoError("--baseline-out writes DAVIS masks; it does not apply to --format jhmdb")
    config = JhmdbSynthConfig(height=args.height, width=args.width, frames=args.frames, max_speed=args.max_speed)
    names = write_jhmdb_benchmark(args.out, args.sequences, config, args.seed)
    print(f"wrote {len(names)} JHMDB-layout videos to {args.out} (list: {args.out}/{LIST_NAME})")
