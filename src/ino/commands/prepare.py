"""``ino prepare``: transcode a video collection once into small, fast-seeking H.264 files for training."""

from __future__ import annotations

import argparse

from ino.commands._args import non_negative_int, positive_float, positive_int

SUMMARY = "transcode training videos once (short side, short GOP) for fast clip decoding"
DESCRIPTION = (
    "Re-encode every video under --src (a folder, glob, or csv/txt list) into --dst with libx264: short side at "
    "most --short-side, a keyframe every --keyframe-interval frames. Resumable: outputs made with the same settings "
    "are skipped. Bad inputs are reported, never fatal (see dst/prepare-report.json). A file in --dst that ino did "
    "not write is never replaced without --overwrite."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--src", required=True, help="folder of videos, glob pattern, or csv/txt list of paths")
    parser.add_argument("--dst", required=True, help="output folder; relative paths under --src are mirrored")
    parser.add_argument("--short-side", type=positive_int, default=320, help="largest short side (never upscaled)")
    parser.add_argument("--fps", type=positive_float, default=None, help="resample to this rate (default: native)")
    parser.add_argument("--keyframe-interval", type=positive_int, default=8, help="frames between keyframes")
    parser.add_argument("--crf", type=non_negative_int, default=23, help="x264 constant rate factor (lower = better)")
    parser.add_argument("--preset", default="veryfast", help="x264 preset (slower = smaller files)")
    parser.add_argument("--workers", type=positive_int, default=None, help="processes (default: CPU count)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace files in --dst that ino did not write (same names)"
    )


def run(args: argparse.Namespace) -> None:
    from ino.data.transcode import REPORT_NAME, TranscodeConfig, prepare

    config = TranscodeConfig(args.short_side, args.fps, args.keyframe_interval, args.crf, args.preset)
    report = prepare(
        args.src, args.dst, config, workers=args.workers, progress=not args.quiet, overwrite=args.overwrite
    )
    counts = report.counts
    print(
        f"transcoded {counts['done']}, already done {counts['skipped']}, failed {counts['failed']}, "
        f"missing from the list {len(report.missing)}; {report.frames} frames, {report.bytes_out / 2**20:.1f} MiB "
        f"in {report.seconds:.1f} s; report: {args.dst}/{REPORT_NAME}"
    )
