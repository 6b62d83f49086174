"""``ino evaluate``: DAVIS-2017 semi-supervised J&F of a results folder."""

from __future__ import annotations

from jsonargparse import ArgumentParser, Namespace

SUMMARY = "score predictions with DAVIS J&F"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Score DAVIS-format predictions with the DAVIS-2017 semi-supervised J&F.")
    parser.add_argument("--davis-root", required=True, help="DAVIS-layout folder with Annotations/<resolution>/")
    parser.add_argument("--results", required=True, help="folder of <sequence>/<frame>.png predictions")
    parser.add_argument("--set", default="val", help="ImageSets/2017/<set>.txt (every sequence when absent)")
    parser.add_argument("--resolution", default="480p", help="resolution folder name, e.g. 480p")
    parser.add_argument("--sequences", default=None, help="comma-separated subset of sequences")
    parser.add_argument("--out", default=None, help="where to write CSV/JSON/PNG (default: --results)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    parser.add_argument("--allow-missing", action="store_true", help="score missing prediction frames as empty")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: Namespace) -> None:
    from ino.evaluate import evaluate
    from ino.evaluation_report import print_and_write

    sequences = [s for s in args.sequences.split(",") if s] if args.sequences else None
    evaluation = evaluate(
        args.davis_root,
        args.results,
        set_name=args.set,
        resolution=args.resolution,
        workers=args.workers,
        allow_missing=args.allow_missing,
        sequences=sequences,
        progress=not args.quiet,
    )
    print_and_write(evaluation, args.out or args.results, args.set)
