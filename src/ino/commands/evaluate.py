"""``ino evaluate``: DAVIS-2017 semi-supervised J&F, JHMDB keypoint PCK or VIP part mIoU of a results folder (never
imports torch)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ino.commands._args import comma_list, positive_int

if TYPE_CHECKING:
    from ino.data.davis import DavisLayout
    from ino.data.jhmdb import JhmdbLayout
    from ino.data.vip import VipLayout
    from ino.evaluation.pck import PckEvaluation
    from ino.evaluation.scorer import Evaluation
    from ino.evaluation.vip import VipEvaluation

SUMMARY = "score predictions with DAVIS J&F, JHMDB PCK or VIP part mIoU"
DESCRIPTION = (
    "Score DAVIS-format predictions with the DAVIS-2017 semi-supervised J&F, JHMDB keypoints with CRW's PCK "
    "(--jhmdb-root), or VIP part-label predictions with CRW's mIoU (--vip-root) (docs/evaluation.md)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    roots = parser.add_mutually_exclusive_group(required=True)
    roots.add_argument("--davis-root", help="DAVIS-layout folder with Annotations/<resolution>/")
    roots.add_argument("--jhmdb-root", help="JHMDB folder: PCK of <action>/<video>.json keypoint files")
    roots.add_argument("--vip-root", help="VIP_Fine folder: part mIoU of <video>/<frame>.png class-id maps")
    parser.add_argument("--results", required=True, help="folder of <sequence>/<frame>.png predictions")
    parser.add_argument("--set", default="val", help="ImageSets/2017/<set>.txt; VIP: lists/<set>_videos.txt")
    parser.add_argument("--list", default=None, help="JHMDB or VIP video list file (JHMDB default: every video)")
    parser.add_argument(
        "--max-frames", type=positive_int, default=None, help="score only each video's first N frames (a quick check)"
    )
    parser.add_argument("--resolution", default="480p", help="resolution folder name, e.g. 480p")
    parser.add_argument("--sequences", type=comma_list, default=None, help="comma-separated subset of sequences")
    parser.add_argument("--out", default=None, help="where to write CSV/JSON/PNG (default: --results)")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="worker processes, or threads where forking is unsafe (default: CPU count)",
    )
    parser.add_argument("--allow-missing", action="store_true", help="score missing prediction frames as empty")


def print_and_write(evaluation: Evaluation, out: str, set_name: str) -> None:
    """The official tables on stdout, then the files written (``ino evaluate`` and ``ino propagate --evaluate``)."""
    from ino.evaluation.report import format_tables, write_outputs

    print(format_tables(evaluation, set_name))
    paths = write_outputs(evaluation, out, set_name)
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")


def print_and_write_pck(evaluation: PckEvaluation, out: str) -> None:
    """The PCK table on stdout, then ``pck.json`` and ``pck.md`` (``ino evaluate``, ``ino propagate --evaluate``)."""
    from ino.evaluation.pck import format_pck_table, write_pck_outputs

    print(format_pck_table(evaluation))
    paths = write_pck_outputs(evaluation, out)
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")


def print_and_write_vip(evaluation: VipEvaluation, out: str, set_name: str) -> None:
    """The mIoU tables on stdout, then the VIP JSON and Markdown (``ino evaluate``, ``ino propagate --evaluate``)."""
    from ino.evaluation.vip_report import format_vip_tables, write_vip_outputs

    print(format_vip_tables(evaluation, set_name))
    paths = write_vip_outputs(evaluation, out, set_name)
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")


def run(args: argparse.Namespace) -> None:
    from ino.errors import InoError
    from ino.utils.outputs import refuse_inside, writable_folder

    if args.list and not (args.jhmdb_root or args.vip_root):
        raise InoError("--list belongs to --jhmdb-root or --vip-root (DAVIS: --set, --sequences)")
    if args.allow_missing and args.jhmdb_root:
        raise InoError("--allow-missing applies to DAVIS and VIP: JHMDB needs every video's keypoint file")
    out = args.out or args.results
    refuse_inside(out, _layout(args).data_folders())
    if args.out:  # checked before scoring, which may take minutes (--results was read, so it exists)
        writable_folder(out)
    if args.vip_root:
        _run_vip(args, out)
    elif args.jhmdb_root:
        _run_jhmdb(args, out)
    else:
        _run_davis(args, out)


def _layout(args: argparse.Namespace) -> DavisLayout | JhmdbLayout | VipLayout:
    """The dataset given, whose data folders no output may lie in."""
    from pathlib import Path

    from ino.data.davis import DavisLayout
    from ino.data.jhmdb import JhmdbLayout
    from ino.data.vip import VipLayout

    if args.vip_root:
        return VipLayout(args.vip_root)
    if args.jhmdb_root:
        return JhmdbLayout(args.jhmdb_root)
    return DavisLayout(Path(args.davis_root))


def _run_davis(args: argparse.Namespace, out: str) -> None:
    from ino.evaluation.scorer import evaluate, keep_freed_memory

    keep_freed_memory()  # a command's own process: page faults were a quarter of its CPU time (docs/evaluation.md)
    evaluation = evaluate(
        args.davis_root,
        args.results,
        set_name=args.set,
        resolution=args.resolution,
        workers=args.workers,
        allow_missing=args.allow_missing,
        sequences=args.sequences,
        progress=not args.quiet,
        max_frames=args.max_frames,
    )
    print_and_write(evaluation, out, args.set)


def _run_jhmdb(args: argparse.Namespace, out: str) -> None:
    """JHMDB keypoints: ``--list`` names the videos (default: every video with a joint file), ``--sequences``
    picks ``<action>/<video>`` names."""
    from ino.evaluation.pck import evaluate_pck

    evaluation = evaluate_pck(
        args.jhmdb_root, args.results, list_file=args.list, videos=args.sequences, max_frames=args.max_frames
    )
    print_and_write_pck(evaluation, out)


def _run_vip(args: argparse.Namespace, out: str) -> None:
    """VIP part propagation: ``--set`` names ``lists/<set>_videos.txt``, ``--sequences`` picks videos."""
    from ino.evaluation.vip import evaluate_vip

    evaluation = evaluate_vip(
        args.vip_root,
        args.results,
        set_name=args.set,
        list_file=args.list,
        videos=args.sequences,
        workers=args.workers,
        allow_missing=args.allow_missing,
        progress=not args.quiet,
        max_frames=args.max_frames,
    )
    print_and_write_vip(evaluation, out, args.set)
