"""Keypoints <-> soft label maps on the feature grid, as the JHMDB protocol of CRW and CropMAE draws and reads them.

    geometry = GridGeometry(original_hw=(240, 320), resized_hw=(320, 320), stride=8)   # CRW: 40x40 grid
    labels = encode_joints(joints, geometry, KEYPOINT_PRESETS["crw"])   # (16, 40, 40): background + 15 joints
    ... propagate ``labels`` as soft labels (no argmax) ...
    joints_t = decode_joints(soft_t, geometry, KEYPOINT_PRESETS["crw"])  # (15, 2) pixels, NaN = lost

Every choice of the references is a parameter (``/work/notes``-level detail is in docs/evaluation.md, "JHMDB"):

- **geometry** (:class:`GridGeometry`): original frame -> resized input -> grid of ``ceil(resized / stride)``
  cells. ``"reference"`` maps pixel x to ``x * resized_w / W / stride`` and back with ``x_g * W / grid_w`` (no
  half-pixel terms, as both references: pixel 0 lands on cell 0's index); ``"centred"`` maps pixel centres to cell
  centres, ``(x + 0.5) * resized_w / W / stride - 0.5``, and back exactly.
- **drawing**: ``"reference"`` is pose-hg-train's ``draw_labelmap`` as both references call it: a
  ``ceil(6 sigma + 1)``-square patch of ``exp(-d^2 / 2 sigma^2)`` centred on index ``(6 sigma + 1) // 2``, placed at
  ``int(x - 3 sigma)`` (truncation toward zero), so the peak sits on the nearest cell (half up) and one cell further
  out near the top/left border; ``"exact"`` evaluates the Gaussian at the true sub-cell position on the cells within
  3 sigma. ``sigma`` is in grid cells (both references: 0.5).
- **background**: 1 where every joint channel is exactly 0, else 0 (both references); joint channels are not
  normalised.
- **decode**: per joint, the ``topk`` largest grid values (CRW 3, CropMAE 5), weights = values / their sum, the
  weighted mean of the cells' (column, row) indices, then to pixels; a channel summing to 0 gives NaN (the
  references' -1 marker). Ties go to the lower row-major index, which is what ``torch.topk`` returned on CPU for the
  references' maps (it leaves the order unspecified).

Pure numpy; a torch tensor is accepted where soft labels come in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ino.data.jhmdb import N_JOINTS
from ino.errors import InoError

DRAWINGS = ("reference", "exact")
CONVENTIONS = ("reference", "centred")


@dataclass(frozen=True)
class KeypointSpec:
    """How joints become label maps and back: Gaussian ``sigma`` (grid cells), ``drawing``, decode ``topk``."""

    sigma: float = 0.5
    drawing: str = "reference"
    topk: int = 3

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise InoError(f"keypoint sigma must be > 0 grid cells, got {self.sigma}")
        if self.drawing not in DRAWINGS:
            raise InoError(f"keypoint drawing must be one of {DRAWINGS}, got {self.drawing!r}")
        if self.topk < 1:
            raise InoError(f"keypoint decode topk must be >= 1, got {self.topk}")


#: CRW (``code/utils/test_utils.py`` process_pose topk=3) and CropMAE (topk=5); both draw sigma 0.5 on the grid
KEYPOINT_PRESETS = {
    "crw": KeypointSpec(sigma=0.5, drawing="reference", topk=3),
    "cropmae": KeypointSpec(sigma=0.5, drawing="reference", topk=5),
}


@dataclass(frozen=True)
class GridGeometry:
    """Original frame (H, W) -> resized network input (h, w) -> feature grid ``ceil(h / stride)`` x
    ``ceil(w / stride)``; ``convention`` says how pixel coordinates map onto cell indices (module docstring)."""

    original_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    stride: int
    convention: str = "reference"

    def __post_init__(self) -> None:
        if self.convention not in CONVENTIONS:
            raise InoError(f"keypoint convention must be one of {CONVENTIONS}, got {self.convention!r}")
        if min(*self.original_hw, *self.resized_hw) < 1 or self.stride < 1:
            raise InoError(f"bad grid geometry {self.original_hw} -> {self.resized_hw} / {self.stride}")

    @property
    def grid_hw(self) -> tuple[int, int]:
        return (math.ceil(self.resized_hw[0] / self.stride), math.ceil(self.resized_hw[1] / self.stride))

    def _scale(self) -> np.ndarray:
        """Grid cells per original pixel, (x, y)."""
        (height, width), (rh, rw) = self.original_hw, self.resized_hw
        return np.array([rw / width / self.stride, rh / height / self.stride])

    def to_grid(self, points: np.ndarray) -> np.ndarray:
        """Pixel (x, y) (..., 2), 0-based in the original frame -> grid coordinates (column, row)."""
        points = np.asarray(points, dtype=np.float64)
        if self.convention == "centred":
            return (points + 0.5) * self._scale() - 0.5
        return points * self._scale()

    def to_pixels(self, grid_points: np.ndarray) -> np.ndarray:
        """Grid (column, row) (..., 2) -> 0-based pixel (x, y) in the original frame."""
        grid_points = np.asarray(grid_points, dtype=np.float64)
        if self.convention == "centred":
            return (grid_points + 0.5) / self._scale() - 0.5
        (height, width), (gh, gw) = self.original_hw, self.grid_hw
        return grid_points * np.array([width / gw, height / gh])


def _paste_reference(channel: np.ndarray, x: float, y: float, sigma: float) -> None:
    """draw_labelmap's patch: integer corner by truncation, patch centre at ``(6 sigma + 1) // 2``, clipped."""
    extent = 6 * sigma + 1
    offsets = np.arange(math.ceil(extent), dtype=np.float64) - extent // 2
    patch = np.exp(-(offsets[None, :] ** 2 + offsets[:, None] ** 2) / (2 * sigma**2))
    height, width = channel.shape
    corner = (int(x - 3 * sigma), int(y - 3 * sigma))  # int(): toward zero, as the reference
    end = (int(x + 3 * sigma + 1), int(y + 3 * sigma + 1))
    if corner[0] >= width or corner[1] >= height or end[0] < 0 or end[1] < 0:
        return
    x0, x1 = max(0, corner[0]), min(end[0], width, corner[0] + patch.shape[1])
    y0, y1 = max(0, corner[1]), min(end[1], height, corner[1] + patch.shape[0])
    if x1 > x0 and y1 > y0:
        channel[y0:y1, x0:x1] = patch[y0 - corner[1] : y1 - corner[1], x0 - corner[0] : x1 - corner[0]]


def _paste_exact(channel: np.ndarray, x: float, y: float, sigma: float) -> None:
    """The Gaussian at the true position on every cell within 3 sigma (Chebyshev) of it."""
    height, width = channel.shape
    columns, rows = np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
    near_x, near_y = np.abs(columns - x) <= 3 * sigma, np.abs(rows - y) <= 3 * sigma
    if near_x.any() and near_y.any():
        values = np.exp(-((columns[near_x][None, :] - x) ** 2 + (rows[near_y][:, None] - y) ** 2) / (2 * sigma**2))
        channel[np.ix_(near_y, near_x)] = values


def encode_joints(joints: np.ndarray, geometry: GridGeometry, spec: KeypointSpec) -> np.ndarray:
    """Label maps (16, h, w) float32 on the grid: channel 0 background, 1..15 one Gaussian per joint.

    ``joints`` (15, 2) 0-based pixel (x, y) in the original frame; a NaN joint draws nothing (all-zero channel).
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape != (N_JOINTS, 2):
        raise ValueError(f"joints must have shape ({N_JOINTS}, 2), got {joints.shape}")
    height, width = geometry.grid_hw
    maps = np.zeros((N_JOINTS + 1, height, width), dtype=np.float64)
    paste = _paste_reference if spec.drawing == "reference" else _paste_exact
    for index, (x, y) in enumerate(geometry.to_grid(joints), start=1):
        if np.isfinite(x) and np.isfinite(y):
            paste(maps[index], float(x), float(y), spec.sigma)
    maps[0] = (maps[1:].sum(axis=0) == 0).astype(np.float64)
    return maps.astype(np.float32)


def _as_numpy(soft: Any) -> np.ndarray:
    """A numpy view of soft labels given as numpy or as a torch tensor on any device."""
    if hasattr(soft, "detach"):
        tensor = soft.detach().cpu()
        if tensor.element_size() < 4:  # bfloat16 / float16 have no numpy twin
            tensor = tensor.float()
        return tensor.numpy()
    return np.asarray(soft)


def decode_grid(soft: Any, topk: int, background: bool = True) -> np.ndarray:
    """Joints (15, 2) in grid (column, row) from label maps (16 or 15, h, w): top-k weighted mean, NaN if empty."""
    maps = _as_numpy(soft)
    if background:
        maps = maps[1:]
    if maps.ndim != 3 or maps.shape[0] != N_JOINTS:
        raise ValueError(f"soft labels must have {N_JOINTS} joint channels (+ background), got {maps.shape}")
    width = maps.shape[2]
    flat = maps.reshape(N_JOINTS, -1)
    k = min(topk, flat.shape[1])
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]  # ties: lower row-major index first
    values = np.take_along_axis(flat, order, axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = values / values.sum(axis=1, keepdims=True)
    coords = np.stack([(weights * (order % width)).sum(axis=1), (weights * (order // width)).sum(axis=1)], axis=1)
    coords[flat.sum(axis=1) == 0] = np.nan
    return coords


def decode_joints(soft: Any, geometry: GridGeometry, spec: KeypointSpec, background: bool = True) -> np.ndarray:
    """Joints (15, 2) 0-based pixel (x, y) in the original frame from label maps; NaN where a channel is empty."""
    maps = _as_numpy(soft)
    if maps.shape[-2:] != geometry.grid_hw:
        raise ValueError(f"soft labels are {maps.shape[-2:]} but the geometry's grid is {geometry.grid_hw}")
    return geometry.to_pixels(decode_grid(maps, spec.topk, background))
