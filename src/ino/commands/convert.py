"""``ino convert``: turn an INO, DINO or timm checkpoint into a self-describing safetensors backbone."""

from __future__ import annotations

import argparse
from pathlib import Path

SUMMARY = "export a checkpoint's backbone as safetensors + JSON metadata"
DESCRIPTION = (
    "Load a backbone strictly (INO training checkpoint, DINO or timm state dict, our safetensors) and write it as "
    "safetensors with arch, patch size, img_size and source in the header and in OUT.json. An existing OUT or "
    "OUT.json that ino did not write is replaced only with --overwrite."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="checkpoint to read (.pth/.safetensors), or 'random' for a seeded init")
    parser.add_argument("output", help="safetensors file to write")
    parser.add_argument(
        "--which",
        choices=("student", "teacher"),
        default="student",
        help="entry of an INO/DINO training checkpoint (INO's inference uses the student)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace OUT and OUT.json even if ino did not write them"
    )


def claim_backbone_files(path: str | Path, overwrite: bool, what: str) -> tuple[Path, Path]:
    """The safetensors file and its ``.json`` sidecar, checked before any work: each absent, written by ``ino``
    (recorded in its folder's ``.ino-files`` by :func:`record_backbone_files`) or ``overwrite`` given."""
    from ino.utils.outputs import claim_file

    weights = claim_file(path, overwrite=overwrite, what=what)
    return weights, claim_file(Path(f"{weights}.json"), overwrite=overwrite, what=f"{what}'s sidecar")


def record_backbone_files(files: tuple[Path, Path]) -> None:
    """Note both files as ``ino``'s, so that exporting again to the same name replaces them without --overwrite."""
    from ino.utils.outputs import record_file

    for file in files:
        record_file(file)


def run(args: argparse.Namespace) -> None:
    from ino.models.weights import load_backbone, save_backbone

    files = claim_backbone_files(args.output, args.overwrite, "output")
    model = load_backbone(args.input, which=args.which)
    metadata = save_backbone(model, args.output)
    record_backbone_files(files)
    geometry = f"{model.arch}/{model.patch_size} backbone (img_size {model.img_size})"
    print(f"wrote {geometry} from {metadata['source']} to {args.output} (+ .json)")
    if model.initialised_keys:
        print(f"not in the input, freshly initialised: {', '.join(model.initialised_keys)}")
