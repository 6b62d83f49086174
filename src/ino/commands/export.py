"""``ino export``: a training checkpoint's backbone as a safetensors file that ``ino propagate`` loads."""

from __future__ import annotations

import argparse

SUMMARY = "export the student or teacher backbone of a training checkpoint to safetensors"
DESCRIPTION = (
    "Write a training checkpoint's backbone (no head) as safetensors + JSON. An existing --out or its .json that "
    "ino did not write is replaced only with --overwrite."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a checkpoints/step-*.pt file or a run folder (newest)")
    parser.add_argument("--out", required=True, help="output .safetensors path")
    parser.add_argument(
        "--which", choices=("student", "teacher"), default="student", help="INO's inference uses the student"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out and its .json even if ino did not")


def run(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ino.commands.convert import claim_backbone_files, record_backbone_files
    from ino.errors import InoError
    from ino.models.weights import load_backbone, save_backbone
    from ino.training.checkpoint import latest_intact_checkpoint

    files = claim_backbone_files(args.out, args.overwrite, "--out")
    source = Path(args.checkpoint)
    if source.is_dir():
        newest = latest_intact_checkpoint(source)  # a damaged newest one is passed over, with a warning
        if newest is None:
            raise InoError(f"{source}: no checkpoints/step-*.pt in this run folder")
        source = newest[0]
    model = load_backbone(source, which=args.which)
    save_backbone(model, args.out, source=f"{source}[{args.which}]")
    record_backbone_files(files)
    print(f"wrote {args.out} ({model.arch}/{model.patch_size}, {args.which} of {source})")
