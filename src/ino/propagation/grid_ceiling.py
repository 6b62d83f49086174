"""The best J&F any features can score under a propagation protocol: the ground truth itself, through the grid.

Propagation predicts labels on the feature grid (frame resized to the protocol's short side, one cell per patch)
and maps them back to the frame with the protocol's upsampling, so parts thinner than a cell and the detail of
every boundary are lost whatever the features. Sampling each frame's ground truth onto that grid with the
protocol's own label downsampling (:func:`ino.propagation.engine.first_frame_labels`) and mapping it back
(:func:`ino.propagation.engine.labels_to_mask`) gives what perfect point correspondences would score. It is not a strict
bound (averaging the soft labels of several matches can place a boundary between grid points a little better),
but a gap between two backbones has to fit roughly under it: ``ino demo`` reports it next to both scores, so that
a reader can tell how much of what is missing is the features and how much is the grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ino.data.davis import DavisLayout, read_object_ids, write_mask
from ino.propagation.engine import first_frame_labels, labels_to_mask
from ino.propagation.presets import PropagationConfig, grid_size, target_size


def through_grid(ids: np.ndarray, config: PropagationConfig) -> np.ndarray:
    """An id map (H, W) sampled onto the protocol's feature grid and mapped back to (H, W) as propagation does."""
    height, width = ids.shape
    target_hw = target_size(height, width, config)
    labels = first_frame_labels(ids, grid_size(target_hw, config), config)
    return labels_to_mask(labels, target_hw, (height, width), config)


def write_grid_ceiling(
    davis_root: str | Path,
    out: str | Path,
    config: PropagationConfig,
    *,
    resolution: str = "480p",
    sequences: list[str] | None = None,
    max_frames: int | None = None,
) -> list[str]:
    """Write every annotated frame's ground truth, passed :func:`through_grid`, as ``<out>/<sequence>/<frame>.png``.

    The folder scores like a propagation result (``ino evaluate``); returns the sequences written.
    """
    layout = DavisLayout(Path(davis_root), resolution)
    names = sequences or layout.sequences()
    for name in names:
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        for stem in [p.stem for p in layout.image_frames(name)][:max_frames]:
            annotation = layout.annotation_dir(name) / f"{stem}.png"
            if annotation.is_file():
                write_mask(folder / f"{stem}.png", through_grid(read_object_ids(annotation), config))
    return names
