"""A JHMDB skeleton drawn over a frame: predicted joints and bones in colour, optionally the ground truth as rings.

Used for the per-video keypoint overlay of JHMDB propagation; coordinates are 0-based pixels (pixel centres at
integers), drawn with sub-pixel accuracy. A NaN joint (lost, or not predicted) is skipped with its bones.
"""

from __future__ import annotations

import cv2
import numpy as np

from ino.data.jhmdb import N_JOINTS, SKELETON
from ino.errors import InoError

_SHIFT = 4  # cv2 fixed-point bits
#: one colour per bone: right side warm, left side cool, trunk and head grey-blue
BONE_COLOURS = (
    (200, 200, 255),
    (255, 255, 255),
    (255, 128, 0),
    (0, 160, 255),
    (255, 80, 0),
    (0, 100, 255),
    (255, 200, 0),
    (0, 220, 255),
    (255, 0, 80),
    (120, 0, 255),
    (255, 0, 160),
    (80, 80, 255),
    (255, 60, 200),
    (0, 60, 200),
)


def _fixed(point: np.ndarray) -> tuple[int, int]:
    x, y = np.rint(point * (1 << _SHIFT)).astype(np.int64)
    return int(x), int(y)


def draw_skeleton(
    rgb: np.ndarray, joints: np.ndarray, truth: np.ndarray | None = None, thickness: int | None = None
) -> np.ndarray:
    """A copy of ``rgb`` (H, W, 3) uint8 with the 14 bones and 15 joints of ``joints`` (15, 2) drawn on it; the
    ground truth ``truth`` (15, 2), when given, as white rings. ``thickness`` defaults to ~1/120 of the short side."""
    joints = np.asarray(joints, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or joints.shape != (N_JOINTS, 2):
        shapes = f"got {rgb.shape} and {joints.shape}"
        raise InoError(f"skeleton overlay: needs an (H, W, 3) frame and ({N_JOINTS}, 2) joints, {shapes}")
    canvas = np.ascontiguousarray(rgb, dtype=np.uint8).copy()
    thickness = thickness or max(1, round(min(rgb.shape[:2]) / 120))
    finite = np.isfinite(joints).all(axis=1)
    for colour, (a, b) in zip(BONE_COLOURS, SKELETON, strict=True):
        if finite[a] and finite[b]:
            cv2.line(canvas, _fixed(joints[a]), _fixed(joints[b]), colour, thickness, cv2.LINE_AA, _SHIFT)
    radius = (thickness + 1) << _SHIFT
    for point in joints[finite]:
        cv2.circle(canvas, _fixed(point), radius, (255, 255, 0), -1, cv2.LINE_AA, _SHIFT)
    if truth is not None:
        truth = np.asarray(truth, dtype=np.float64)
        for point in truth[np.isfinite(truth).all(axis=1)]:
            cv2.circle(canvas, _fixed(point), radius + (2 << _SHIFT), (255, 255, 255), 1, cv2.LINE_AA, _SHIFT)
    return canvas
