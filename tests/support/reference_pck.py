"""A plain reference of JHMDB PCK, written from the definition (docs/evaluation.md, "JHMDB"), for the tests.

Deliberately different in technique from ``ino.evaluation.pck``: Python scalars and loops over videos, frames and
joints, a dictionary of per-joint distance lists as the definition pools them, and explicit branches where the
vectorised scorer relies on IEEE rules (a zero reference length).

Definition: for every video and every frame k >= 1, the joints counted are those whose predicted x is >= 0 (a NaN
prediction is not); the reference length is 0.6 x the diagonal of the box around the ground-truth positions of the
counted joints, with the running min / max started at 1e6 / -1; each counted joint contributes its Euclidean
distance / that length to its joint's list (d / 0 is +inf, 0 / 0 is NaN: never correct). PCK of a joint at a =
100 x (#entries <= a) / #entries; the overall PCK is the plain mean over the joints that have entries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def reference_distances(videos: Sequence[tuple[np.ndarray, np.ndarray]], n_joints: int = 15) -> list[list[float]]:
    """Per joint, every normalised distance of every (prediction, ground truth) video pair, pooled."""
    pooled: list[list[float]] = [[] for _ in range(n_joints)]
    for pred, gt in videos:
        for k in range(1, len(gt)):
            counted = [j for j in range(n_joints) if float(pred[k][j][0]) >= 0]  # NaN >= 0 is False
            min_x, max_x, min_y, max_y = 1e6, -1.0, 1e6, -1.0
            for j in counted:
                x, y = float(gt[k][j][0]), float(gt[k][j][1])
                min_x, max_x = min(min_x, x), max(max_x, x)
                min_y, max_y = min(min_y, y), max(max_y, y)
            width, height = max_x - min_x, max_y - min_y
            length = 0.6 * math.sqrt(width * width + height * height)
            for j in counted:
                dx = float(pred[k][j][0]) - float(gt[k][j][0])
                dy = float(pred[k][j][1]) - float(gt[k][j][1])
                distance = math.sqrt(dx * dx + dy * dy)
                if length == 0:
                    pooled[j].append(math.inf if distance > 0 else math.nan)
                else:
                    pooled[j].append(distance / length)
    return pooled


def reference_pck(
    videos: Sequence[tuple[np.ndarray, np.ndarray]], thresholds: Sequence[float]
) -> tuple[list[list[float | None]], list[float | None]]:
    """(per joint, per threshold PCK in percent or None when the joint has no entry; the mean over joints)."""
    pooled = reference_distances(videos)
    per_joint: list[list[float | None]] = []
    for entries in pooled:
        if not entries:
            per_joint.append([None] * len(thresholds))
            continue
        per_joint.append([100.0 * sum(1 for d in entries if d <= a) / len(entries) for a in thresholds])
    means: list[float | None] = []
    for i in range(len(thresholds)):
        values = [row[i] for row in per_joint if row[i] is not None]
        means.append(sum(values) / len(values) if values else None)
    return per_joint, means
