"""Labels between full-resolution id maps and the feature grid: first-frame labels in, output masks out.

INO resizes the one-hot with align_corners=True, DINO the ids with PIL nearest, CRW and CropMAE the ids with cv2
nearest to the network input and then the one-hot with cv2 bilinear (``label_downsampling``); masks go back to the
frame size by PIL's or cv2's nearest (``mask_resize``). docs/propagation.md, "Presets".
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ino.data.davis import VOID_ID, object_ids
from ino.errors import InoError
from ino.propagation.presets import PropagationConfig


def first_frame_labels(
    ids: np.ndarray,
    grid_hw: tuple[int, int],
    config: PropagationConfig,
    n_classes: int | None = None,
    keep: Iterable[int] | None = None,
) -> torch.Tensor:
    """Soft labels (n_classes, h, w) on the feature grid from a full-resolution id map (0 = background).

    ``bilinear`` (INO): the one-hot at the original resolution is resized with align_corners=True, which
    point-samples it (an object thinner than a patch can vanish). ``nearest`` (DINO): the id map is resized
    with PIL nearest, then one-hot encoded. ``cv2-linear`` (CRW, CropMAE): the id map is resized to the network
    input (grid x patch) with cv2 INTER_NEAREST, one-hot encoded, and resized to the grid with cv2 INTER_LINEAR:
    half-pixel centres, no antialiasing, so each cell averages the 2 x 2 pixels around its centre (computed as
    ``F.interpolate(align_corners=False)``, which is that). Only the ids in ``keep`` (default: all present) get
    channels.
    """
    ids = object_ids(ids)
    present = [int(i) for i in np.unique(ids)]
    keep = present if keep is None else sorted(set(keep))
    n_classes = max(present) + 1 if n_classes is None else n_classes
    if keep and max(keep) >= n_classes:
        raise InoError(f"object id {max(keep)} does not fit in {n_classes} classes")
    h, w = grid_hw
    labels = torch.zeros(n_classes, h, w)
    if not keep:
        return labels
    selected = torch.tensor(keep)[:, None, None]
    if config.label_downsampling == "nearest":
        small = np.asarray(Image.fromarray(ids).resize((w, h), Image.NEAREST))
        labels[keep] = (torch.from_numpy(small.astype(np.int64))[None] == selected).float()
    elif config.label_downsampling == "cv2-linear":
        size = (h * config.patch_size, w * config.patch_size)
        if ids.shape != size:
            ids = cv2.resize(ids, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        one_hot = (torch.from_numpy(ids.astype(np.int64))[None] == selected).float()
        labels[keep] = F.interpolate(one_hot[None], size=(h, w), mode="bilinear", align_corners=False)[0]
    else:
        one_hot = (torch.from_numpy(ids.astype(np.int64))[None] == selected).float()
        labels[keep] = F.interpolate(one_hot[None], size=(h, w), mode="bilinear", align_corners=True)[0]
    return labels


def labels_to_mask(
    soft: torch.Tensor, target_hw: tuple[int, int], original_hw: tuple[int, int], config: PropagationConfig
) -> np.ndarray:
    """Output ids (H, W) uint8 from soft labels (n, h, w): x patch bilinear, norm_mask, argmax, nearest resize.

    norm_mask rescales each channel whose max is > 0 to [0, 1] (min-max); all-zero channels stay zero. The last
    resize, to the original size, is PIL's nearest (INO, DINO) or cv2's INTER_NEAREST (``mask_resize="cv2"``,
    CRW's and CropMAE's ``convert_davis.py``), which sample different pixels: cv2 takes floor(x * in / out).
    """
    if soft.shape[0] > VOID_ID + 1:
        raise InoError(f"{soft.shape[0]} classes do not fit in a uint8 mask")
    up = F.interpolate(soft[None], size=target_hw, mode="bilinear", align_corners=False)[0]
    if config.norm_mask:
        low = up.amin(dim=(1, 2), keepdim=True)
        high = up.amax(dim=(1, 2), keepdim=True)
        up = torch.where(high > 0, (up - low) / (high - low), up)
    ids = up.argmax(dim=0).to(torch.uint8).cpu().numpy()
    if ids.shape != tuple(original_hw) and config.mask_resize == "cv2":
        ids = cv2.resize(ids, (original_hw[1], original_hw[0]), interpolation=cv2.INTER_NEAREST)
    elif ids.shape != tuple(original_hw):
        ids = np.asarray(Image.fromarray(ids).resize((original_hw[1], original_hw[0]), Image.NEAREST))
    return ids
