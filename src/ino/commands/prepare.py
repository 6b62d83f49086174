"""``ino prepare``: transcode a video collection once into small, fast-seeking H.264 files for training."""

from __future__ import annotations

from jsonargparse import ArgumentParser, Namespace

SUMMARY = "transcode training videos once (short side, short GOP) for fast clip decoding"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        description="Re-encode every video under --src (a folder, glob, or csv/txt list) into --dst with libx264: "
        "short side at most --short-side, a keyframe every --keyframe-interval frames. Resumable: outputs made "
        "with the same settings are skipped. Bad inputs are reported, never fatal (see dst/prepare-report.json)."
    )
    parser.add_argument("--src", required=True, help="folder of videos, glob pattern, or csv/txt list of paths")
    parser.add_argument("--dst", required=True, help="output folder; relative paths under --src are mirrored")
    parser.add_argument("--short-side", type=int, default=320, help="largest short side in pixels (never upscaled)")
    parser.add_argument("--fps", type=float, default=None, help="resample to this frame rate (default: native)")
    parser.add_argument("--keyframe-interval", type=int, default=8, help="frames between keyframes (seek cost)")
    parser.add_argument("--crf", type=int, default=23, help="x264 constant rate factor (lower = larger, better)")
    parser.add_argument("--preset", default="veryfast", help="x264 preset (slower = smaller files)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: Namespace) -> None:
    from ino.prepare import REPORT_NAME, PrepareSettings, prepare

    settings = PrepareSettings(args.short_side, args.fps, args.keyframe_interval, args.crf, args.preset)
    report = prepare(args.src, args.dst, settings, workers=args.workers, progress=not args.quiet)
    counts = report.counts
    print(
        f"transcoded {counts['done']}, already done {counts['skipped']}, failed {counts['failed']}, "
        f"missing from the list {len(report.missing)}; {report.frames} frames, {report.bytes_out / 2**20:.1f} MiB "
        f"in {report.seconds:.1f} s; report: {args.dst}/{REPORT_NAME}"
    )
