"""Largest |ino - timm| feature difference per backbone family, from random weights in each release's file layout.

Each family of ``tests/support/upstream_layouts.py`` (DINO, DINOv2 with and without registers, DINOv3 with and
without qkv biases, MAE, CropMAE/SiamMAE, timm's own safetensors) is written to a temporary folder, loaded through
``ino.load_backbone(path, arch=<timm name>)`` and run on a 101x75 frame (floored to the patch multiple); the
reference is timm's ``forward_features`` of the source model cut after the tapped block. Prints a markdown table
(docs/propagation.md#backbones)::

    PYTHONPATH=src python benchmarks/timm_parity.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ino.models.weights import load_backbone
from support.upstream_layouts import FAMILIES, features_and_reference, write_release


def main() -> None:
    print("| family | `--arch` | input (WxH) | block 6 | block 11 |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for family, (arch, _, filename) in FAMILIES.items():
            (Path(folder) / family).mkdir()
            source, path = write_release(family, Path(folder) / family)
            backbone = load_backbone(path, arch=arch)
            cells = []
            for block in (6, 11):
                (height, width), ours, reference = features_and_reference(backbone, source, block)
                cells.append(f"{(ours - reference).abs().max().item():.1e}")
            print(f"| {family} `{filename}` | `{arch}` | {width}x{height} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
