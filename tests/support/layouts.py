"""Benchmark layouts made from synthetic DAVIS sequences: a YouTube-VOS split, sequences of unequal length."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ino.data.davis import DavisLayout, read_mask, write_mask


def ytvos_from_davis(synth: Path, root: Path, sequences: int = 1) -> tuple[Path, Path, list[str]]:
    """A YouTube-VOS layout (valid/ sparse frames, all/ every frame) from the first ``sequences`` synthetic
    sequences: object 1 given at frame 0, object 2 first at frame 5 (index 20); returns (valid, all, names)."""
    layout = DavisLayout(synth)
    names = layout.sequences()[:sequences]
    for name in names:
        frames = layout.image_frames(name)
        for t, path in enumerate(frames):
            (root / "all" / "JPEGImages" / name).mkdir(parents=True, exist_ok=True)
            (root / "all" / "JPEGImages" / name / f"{t * 5:05d}.jpg").write_bytes(path.read_bytes())
            if t % 2 == 0:  # the sparse, evaluated frames
                (root / "valid" / "JPEGImages" / name).mkdir(parents=True, exist_ok=True)
                (root / "valid" / "JPEGImages" / name / f"{t * 5:05d}.jpg").write_bytes(path.read_bytes())
        gt = [read_mask(p) for p in sorted(layout.annotation_dir(name).glob("*.png"))]
        annotations = root / "valid" / "Annotations" / name
        write_mask(annotations / "00000.png", np.where(gt[0] == 1, 1, 0))
        late = np.zeros_like(gt[4])
        late[20:60, 40:100] = 2
        late[:5, :5] = 1  # an old id in a later mask is ignored
        write_mask(annotations / "00020.png", late)
    return root / "valid", root / "all", names


def shorten(synth: Path, name: str, keep: int) -> None:
    """Cut one synthetic sequence to its first ``keep`` frames (frames and annotations)."""
    layout = DavisLayout(synth)
    for path in layout.image_frames(name)[keep:]:
        path.unlink()
    for path in sorted(layout.annotation_dir(name).glob("*.png"))[keep:]:
        path.unlink()
