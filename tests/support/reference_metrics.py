"""A plain reference of the DAVIS measures, written from the definitions (docs/method.md §8), for the tests.

Deliberately different in technique from ``ino.evaluation.metrics``: the boundary map is written per pixel (and as a
direct neighbour comparison for large masks), "dilate with a disk of radius r" is evaluated as "some point of the
other boundary lies within Euclidean distance r", and nothing is cropped or histogrammed.
"""

from __future__ import annotations

import math

import numpy as np


def boundary_loops(mask: np.ndarray) -> np.ndarray:
    """Per-pixel boundary map: differs from east / south / south-east; edge rules of seg2bmap."""
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    out = np.zeros_like(mask)

    def at(y: int, x: int) -> bool:
        return bool(mask[y, x]) if y < height and x < width else False

    for y in range(height):
        for x in range(width):
            s = at(y, x)
            if y == height - 1 and x == width - 1:
                out[y, x] = False
            elif y == height - 1:
                out[y, x] = s != at(y, x + 1)
            elif x == width - 1:
                out[y, x] = s != at(y + 1, x)
            else:
                out[y, x] = s != at(y, x + 1) or s != at(y + 1, x) or s != at(y + 1, x + 1)
    return out


def boundary_vectorised(mask: np.ndarray) -> np.ndarray:
    """The same rules with padded neighbour arrays (for full-size frames where loops are too slow)."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, ((0, 1), (0, 1)))
    east, south, south_east = padded[:-1, 1:], padded[1:, :-1], padded[1:, 1:]
    out = (mask != east) | (mask != south) | (mask != south_east)
    out[-1, :] = mask[-1, :] != east[-1, :]
    out[:, -1] = mask[:, -1] != south[:, -1]
    out[-1, -1] = False
    return out


def _within(points: np.ndarray, others: np.ndarray, radius: int) -> int:
    """How many of ``points`` have some point of ``others`` within Euclidean distance ``radius``."""
    if len(points) == 0 or len(others) == 0:
        return 0
    count = 0
    for start in range(0, len(points), 512):
        block = points[start : start + 512, None, :] - others[None, :, :]
        count += int(np.any((block**2).sum(-1) <= radius * radius, axis=1).sum())
    return count


def reference_j(gt: np.ndarray, pred: np.ndarray) -> float:
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    union = np.logical_or(gt, pred).sum()
    return 1.0 if union == 0 else float(np.logical_and(gt, pred).sum() / union)


def reference_f(gt: np.ndarray, pred: np.ndarray, loops: bool = False) -> float:
    gt, pred = np.asarray(gt, bool), np.asarray(pred, bool)
    height, width = gt.shape
    radius = math.ceil(0.008 * math.sqrt(height**2 + width**2))
    boundary = boundary_loops if loops else boundary_vectorised
    gt_points = np.argwhere(boundary(gt)).astype(np.int64)
    pred_points = np.argwhere(boundary(pred)).astype(np.int64)
    n_gt, n_pred = len(gt_points), len(pred_points)
    if n_pred == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_pred > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_pred == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = _within(pred_points, gt_points, radius) / n_pred
        recall = _within(gt_points, pred_points, radius) / n_gt
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def reference_frame(gt_ids: np.ndarray, pred_ids: np.ndarray, n_objects: int, loops: bool = False):
    """Lists of J and F for objects 1..n_objects."""
    js = [reference_j(gt_ids == k, pred_ids == k) for k in range(1, n_objects + 1)]
    fs = [reference_f(gt_ids == k, pred_ids == k, loops) for k in range(1, n_objects + 1)]
    return js, fs


def reference_statistics(values) -> tuple[float, float, float]:
    """Mean; fraction strictly above 0.5; mean of the first minus the last of 4 overlapping bins."""
    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    recall = sum(1 for v in values if v > 0.5) / n
    edges = [round(1 + i * (n - 1) / 4 + 1e-10) - 1 for i in range(5)]
    first = values[edges[0] : edges[1] + 1]
    last = values[edges[3] : edges[4] + 1]
    return mean, recall, sum(first) / len(first) - sum(last) / len(last)
