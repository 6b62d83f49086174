"""``ino convert``: turn an INO, DINO or timm checkpoint into a self-describing safetensors backbone."""

from __future__ import annotations

import argparse

SUMMARY = "export a checkpoint's backbone as safetensors + JSON metadata"
DESCRIPTION = (
    "Load a backbone strictly (INO training checkpoint, DINO or timm state dict, our safetensors) and write it as "
    "safetensors with arch, patch size, img_size and source in the header and in OUT.json."
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


def run(args: argparse.Namespace) -> None:
    from ino.models.weights import load_backbone, save_backbone

    model = load_backbone(args.input, which=args.which)
    metadata = save_backbone(model, args.output)
    geometry = f"{model.arch}/{model.patch_size} backbone (img_size {model.img_size})"
    print(f"wrote {geometry} from {metadata['source']} to {args.output} (+ .json)")
    if model.initialised_keys:
        print(f"not in the input, freshly initialised: {', '.join(model.initialised_keys)}")
