"""``ino evaluate``: DAVIS-2017 semi-supervised J&F of a results folder (never imports torch)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ino.commands._args import comma_list, positive_int

if TYPE_CHECKING:
    from ino.evaluation.scorer import Evaluation

SUMMARY = "score predictions with DAVIS J&F"
DESCRIPTION = "Score DAVIS-format predictions with the DAVIS-2017 semi-supervised J&F (docs/evaluation.md)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--davis-root", required=True, help="DAVIS-layout folder with Annotations/<resolution>/")
    parser.add_argument("--results", required=True, help="folder of <sequence>/<frame>.png predictions")
    parser.add_argument("--set", default="val", help="ImageSets/2017/<set>.txt (every sequence when absent)")
    parser.add_argument("--resolution", default="480p", help="resolution folder name, e.g. 480p")
    parser.add_argument("--sequences", type=comma_list, default=None, help="comma-separated subset of sequences")
    parser.add_argument("--out", default=None, help="where to write CSV/JSON/PNG (default: --results)")
    parser.add_argument("--workers", type=positive_int, default=None, help="threads (default: CPU count)")
    parser.add_argument("--allow-missing", action="store_true", help="score missing prediction frames as empty")


def print_and_write(evaluation: Evaluation, out: str, set_name: str) -> None:
    """The official tables on stdout, then the files written (``ino evaluate`` and ``ino propagate --evaluate``)."""
    from ino.evaluation.report import format_tables, write_outputs

    print(format_tables(evaluation, set_name))
    paths = write_outputs(evaluation, out, set_name)
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")


def run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ino.data.davis import DavisLayout
    from ino.evaluation.scorer import evaluate
    from ino.utils.outputs import refuse_inside, writable_folder

    out = args.out or args.results
    refuse_inside(out, DavisLayout(Path(args.davis_root)).data_folders())
    if args.out:  # checked before scoring, which may take minutes (--results was read, so it exists)
        writable_folder(out)
    evaluation = evaluate(
        args.davis_root,
        args.results,
        set_name=args.set,
        resolution=args.resolution,
        workers=args.workers,
        allow_missing=args.allow_missing,
        sequences=args.sequences,
        progress=not args.quiet,
    )
    print_and_write(evaluation, out, args.set)
