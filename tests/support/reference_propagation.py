"""Plain dense label propagation from docs/method.md §7, the oracle the engine is tested against.

It builds what the engine must never build: the full (n_ctx * hw, hw) affinity and the (hw, hw) window mask,
then follows docs/method.md step by step. Also the real-frame loaders and reduced-resolution presets the tests share.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ino.data.davis import DavisLayout, read_mask
from ino.propagation.engine import first_frame_labels
from ino.propagation.presets import PRESETS, PropagationConfig


def reference_soft(
    features: list[torch.Tensor],
    masks: dict[int, np.ndarray],
    config: PropagationConfig,
    first_labels: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """docs/method.md §7.4-7.5 written plainly: dense affinity, dense window, chains with valid gating and injection.

    ``first_labels`` (n_classes, h, w) are frame 0's soft labels instead of a mask: chain 0 owns every channel.
    """
    channels, h, w = features[0].shape
    rows = torch.arange(h).repeat_interleave(w)
    cols = torch.arange(w).repeat(h)
    window = ((rows[:, None] - rows[None, :]).abs() <= config.radius) & (
        (cols[:, None] - cols[None, :]).abs() <= config.radius
    )
    assert window.shape == (h * w, h * w)
    n_classes = max(int(m.max()) + 1 for m in masks.values()) if first_labels is None else first_labels.shape[0]
    feats = [F.normalize(f.reshape(channels, h * w), dim=0) for f in features]
    labels: list[torch.Tensor] = []
    chains: list[tuple[int, torch.Tensor]] = []
    seen: set[int] = set()
    for t in range(len(features)):
        merged = torch.zeros(n_classes, h * w, dtype=feats[0].dtype)
        for start, valid in chains:
            context = [start, *range(max(t - config.n_last_frames, start), t)]
            context = list(dict.fromkeys(context))
            keys = torch.cat([feats[i] for i in context], dim=1)
            logits = (keys.T @ feats[t]).masked_fill(~window.repeat(len(context), 1), float("-inf"))
            kth = torch.topk(logits, config.topk, dim=0).values[-1:]
            # exp(logit / T) normalised per query, i.e. a softmax over the kept logits: shifted by its maximum
            affinity = torch.where(logits >= kth, torch.exp((logits - logits.amax(dim=0)) / config.temperature), 0)
            affinity = affinity / affinity.sum(dim=0, keepdim=True)
            pred = torch.cat([labels[i] for i in context], dim=1) @ affinity
            merged += valid[:, None] * pred
        if t == 0 and first_labels is not None:
            merged = first_labels.reshape(n_classes, h * w).to(merged.dtype)
            chains.append((0, torch.ones(n_classes, dtype=merged.dtype)))
        if t in masks:
            ids = masks[t]
            new = sorted({int(i) for i in np.unique(ids)} - seen - ({0} if t else set()))
            if new:
                seen |= set(new)
                init = first_frame_labels(ids, (h, w), config, n_classes, keep=new).to(merged.dtype)
                init = init.reshape(n_classes, h * w)
                coverage = init.sum(dim=0, keepdim=True)
                merged = (1 - coverage) * merged + coverage * init
                chains.append((t, (init.amax(dim=1) > 0).to(merged.dtype)))
        labels.append(merged)
    return [label.reshape(n_classes, h, w) for label in labels]


def reference_mask(
    soft: torch.Tensor, target_hw: tuple[int, int], original_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """docs/method.md §7.4 step 7: upsample x8 bilinear, per-channel norm_mask loop, argmax, PIL nearest to (W, H).

    Also returns where the two best channels tie to 1e-9: there argmax is decided by rounding (a late object's
    interior often has background from chain 0 and the object from its own chain both normalised to 1).
    """
    up = F.interpolate(soft[None], scale_factor=8, mode="bilinear", align_corners=False)[0]
    assert up.shape[1:] == target_hw
    for channel in range(up.shape[0]):
        if up[channel].max() > 0:
            shifted = up[channel] - up[channel].min()
            up[channel] = shifted / shifted.max()
    ids = up.argmax(dim=0).numpy().astype(np.uint8)
    best = up.topk(2, dim=0).values if up.shape[0] > 1 else torch.cat([up, up - 1])
    ties = ((best[0] - best[1]) < 1e-9).numpy().astype(np.uint8)
    size = (original_hw[1], original_hw[0])
    return (
        np.array(Image.fromarray(ids).resize(size, Image.NEAREST)),
        np.array(Image.fromarray(ties).resize(size, Image.NEAREST)).astype(bool),
    )


# Reduced-resolution variants of the presets (grids of about 20 x 35) with radii scaled to match.
SMALL = {
    "ino-davis": dataclasses.replace(PRESETS["ino-davis"], short_side=160, radius=4, n_last_frames=4),
    "ino-ytvos": dataclasses.replace(PRESETS["ino-ytvos"], radius=5, n_last_frames=5),
    "dino-davis": dataclasses.replace(PRESETS["dino-davis"], short_side=160, radius=3, n_last_frames=3),
}


def load_sequence(
    root: Path, sequence: str, n_frames: int, preset: str, ytvos_size: tuple[int, int] = (284, 160)
) -> tuple[list[np.ndarray], np.ndarray]:
    """RGB frames (YouTube-VOS variant: pre-shrunk to ``ytvos_size`` (W, H), its native size) and frame-0 ids."""
    layout = DavisLayout(root)
    frames = []
    for path in layout.image_frames(sequence)[:n_frames]:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        if preset == "ino-ytvos":
            rgb = cv2.resize(rgb, ytvos_size, interpolation=cv2.INTER_AREA)
        frames.append(rgb)
    first = read_mask(layout.annotation_dir(sequence) / "00000.png")
    if preset == "ino-ytvos":
        first = np.array(Image.fromarray(first).resize(ytvos_size, Image.NEAREST))
    return frames, first
