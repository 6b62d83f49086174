"""A plain reference of VIP part mIoU, written from the definition, for the tests.

Deliberately different in technique from ``ino.evaluation.vip``: no confusion matrix and no ``bincount``. Each
class's intersection and union are counted pixel by pixel over every frame; the nearest-neighbour resize is PIL's
rule written out (source index = int of a half step plus k steps, the step ``in / out`` accumulated in double
precision, as PIL's ``ImagingScaleAffine`` does); a class whose union is empty over all frames (0/0) is left out of
the mean, as ``np.nanmean`` leaves out ``eval_vip.py``'s NaN.
"""

from __future__ import annotations

import numpy as np

N_CLASSES = 20


def pil_nearest_indices(size_in: int, size_out: int) -> list[int]:
    """Source index of each output index under PIL's nearest resize."""
    step = size_in / size_out
    position = step * 0.5
    indices = []
    for _ in range(size_out):
        indices.append(int(position))
        position += step
    return indices


def resize_nearest(ids: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = pil_nearest_indices(ids.shape[0], shape[0])
    cols = pil_nearest_indices(ids.shape[1], shape[1])
    return np.array([[ids[r][c] for c in cols] for r in rows], dtype=ids.dtype)


def class_counts(frames: list[tuple[np.ndarray, np.ndarray]]) -> tuple[list[int], list[int]]:
    """Per class, (intersection, union) pixel counts over ``(ground truth, prediction)`` pairs; predictions of
    another size are resized first; ground-truth pixels outside 0..19 count nowhere."""
    intersection = [0] * N_CLASSES
    union = [0] * N_CLASSES
    for gt, pred in frames:
        if pred.shape != gt.shape:
            pred = resize_nearest(pred, gt.shape)
        for y in range(gt.shape[0]):
            for x in range(gt.shape[1]):
                truth, guess = int(gt[y, x]), int(pred[y, x])
                if not 0 <= truth < N_CLASSES:
                    continue
                if truth == guess:
                    intersection[truth] += 1
                    union[truth] += 1
                else:
                    union[truth] += 1
                    union[guess] += 1
    return intersection, union


def reference_class_iou(frames: list[tuple[np.ndarray, np.ndarray]]) -> list[float | None]:
    """IoU of each class, None where its union is empty."""
    intersection, union = class_counts(frames)
    return [i / u if u else None for i, u in zip(intersection, union, strict=True)]


def reference_miou(frames: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean of the defined per-class IoUs, background included."""
    values = [v for v in reference_class_iou(frames) if v is not None]
    return sum(values) / len(values)
