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
    The references' rule (docs/propagation.md) is written as CRW's code does it: every context copy is a block of
    keys of its own in one concatenation (a padded context repeats the first frame's block), and a window mask
    per block (none for an unwindowed first frame).
    """
    channels, h, w = features[0].shape
    window = dense_window(h, w, config)
    everything = torch.ones_like(window)
    assert window.shape == (h * w, h * w)
    n_classes = max(int(m.max()) + 1 for m in masks.values()) if first_labels is None else first_labels.shape[0]
    feats = [F.normalize(f.reshape(channels, h * w), dim=0) for f in features]
    labels: list[torch.Tensor] = []
    chains: list[tuple[int, torch.Tensor]] = []
    seen: set[int] = set()
    for t in range(len(features)):
        merged = torch.zeros(n_classes, h * w, dtype=feats[0].dtype)
        for start, valid in chains:
            context = reference_context(start, t, config)
            keys = torch.cat([feats[i] for i, _ in context], dim=1)
            allowed = torch.cat([window if windowed else everything for _, windowed in context])
            logits = (keys.T @ feats[t]).masked_fill(~allowed, float("-inf"))
            affinity = topk_affinity(logits, config)
            pred = torch.cat([labels[i] for i, _ in context], dim=1) @ affinity
            merged += valid[:, None] * pred
        if t == 0 and first_labels is not None:
            merged = first_labels.reshape(n_classes, h * w).to(merged.dtype)
            chains.append((0, torch.ones(n_classes, dtype=merged.dtype)))
        if t in masks:
            ids = masks[t]
            new = sorted({int(i) for i in np.unique(ids)} - seen - ({0} if t else set()))
            if new:
                seen |= set(new)
                init = reference_labels(ids, (h, w), config, n_classes, new).to(merged.dtype)
                init = init.reshape(n_classes, h * w)
                coverage = init.sum(dim=0, keepdim=True)
                merged = (1 - coverage) * merged + coverage * init
                chains.append((t, (init.amax(dim=1) > 0).to(merged.dtype)))
        labels.append(merged)
    return [label.reshape(n_classes, h, w) for label in labels]


def dense_window(h: int, w: int, config: PropagationConfig) -> torch.Tensor:
    """(hw keys, hw queries) True inside the window: a square (Chebyshev <= R) or CRW's disk, sqrt(dy^2 + dx^2) < R."""
    rows = torch.arange(h).repeat_interleave(w)
    cols = torch.arange(w).repeat(h)
    dy, dx = rows[:, None] - rows[None, :], cols[:, None] - cols[None, :]
    if config.window == "disk":
        return (dy.double() ** 2 + dx.double() ** 2).sqrt() < config.radius
    return (dy.abs() <= config.radius) & (dx.abs() <= config.radius)


def reference_context(start: int, t: int, config: PropagationConfig) -> list[tuple[int, bool]]:
    """The (frame, windowed) blocks of a chain's context at frame t, copies repeated.

    INO: the chain's first frame, then the frames after it among the last N, each once. Padded (CRW's
    ``context_index_bank`` over a video whose start is repeated N times): always N short-term blocks, frame
    ``max(start, u)`` for u in t - N .. t - 1.
    """
    n = config.n_last_frames
    if config.pad_context:
        short = [max(start, u) for u in range(t - n, t)]
    else:
        short = list(dict.fromkeys(range(max(t - n, start + 1), t)))
    return [(start, config.window_first_frame), *((u, True) for u in short)]


def topk_affinity(logits: torch.Tensor, config: PropagationConfig) -> torch.Tensor:
    """(keys, queries) weights of the joint top-k, each column a softmax of logit / T over the kept keys.

    ``keep``: every key >= the k-th largest. ``exact``: the keys above it, and the keys equal to it sharing the
    slots left equally (the mean of the predictions over every choice of those slots).
    """
    kth = torch.topk(logits, config.topk, dim=0).values[-1:]
    # exp(logit / T) normalised per query, i.e. a softmax over the kept logits: shifted by its maximum
    exp = torch.exp((logits - logits.amax(dim=0)) / config.temperature)
    if config.topk_ties == "keep":
        affinity = torch.where(logits >= kth, exp, 0)
    else:
        above, at = logits > kth, logits == kth
        n_above, n_at = (mask.sum(dim=0, keepdim=True).to(logits.dtype) for mask in (above, at))
        share = (config.topk - n_above) / n_at
        affinity = torch.where(above, exp, 0) + torch.where(at, exp, 0) * share
    return affinity / affinity.sum(dim=0, keepdim=True)


def reference_labels(
    ids: np.ndarray, grid_hw: tuple[int, int], config: PropagationConfig, n_classes: int, keep: list[int]
) -> torch.Tensor:
    """First-frame labels: the engine's for INO's and DINO's rules; CRW's and CropMAE's written with cv2 itself.

    ``cv2-linear``: the id map nearest-resized to the network input (CropMAE ``src/data/vos.py:152``), one-hot,
    each channel ``cv2.resize(..., INTER_LINEAR)`` to the grid (``src/data/vos.py:194``).
    """
    if config.label_downsampling != "cv2-linear":
        return first_frame_labels(ids, grid_hw, config, n_classes, keep=keep)
    h, w = grid_hw
    size = (w * config.patch_size, h * config.patch_size)
    resized = cv2.resize(ids.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    labels = torch.zeros(n_classes, h, w, dtype=torch.float64)
    for i in keep:
        one_hot = (resized == i).astype(np.float32)
        labels[i] = torch.from_numpy(cv2.resize(one_hot, (w, h), interpolation=cv2.INTER_LINEAR)).double()
    return labels


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
