"""Trivial reference predictions that every method must beat, written in the results layout.

``first-frame``: the first ground-truth mask repeated on every frame (no motion at all). It needs no model, so
it also gives the evaluation demo something honest to score before propagation exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ino.data.davis import DavisLayout, read_object_ids, write_mask


def write_first_frame_baseline(layout: DavisLayout, sequences: Sequence[str], out: str | Path) -> Path:
    """Copy each sequence's first mask (void as background) to every annotated frame under ``out/<seq>/``."""
    out = Path(out)
    for name in sequences:
        frames = layout.annotation_frames(name)
        first = read_object_ids(layout.annotation_dir(name) / f"{frames[0]}.png")
        for frame in frames:
            write_mask(out / name / f"{frame}.png", first)
    return out
