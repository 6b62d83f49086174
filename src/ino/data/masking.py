"""Masks for the student's global crops (docs/method.md §4): INO's random shared mask and iBOT's block masks.

- Faithful (``random_shared_mask``): one mask per training step, or none at all with probability 1 - ``prob``.
  It holds K = floor(r * N) masked patches at random positions, r ~ U(0.1, 0.5), and is shared by every clip,
  every frame and every rank. That sharing is what lets in_aff compare "the same K grid cells" in consecutive
  frames with plain reshapes. Ranks agree because :func:`step_mask` seeds the draw with (seed, step) only (the
  authors broadcast rank 0's draw, which crashed without ``torch.distributed``).
- Paper (``block_masks``): the BEiT/iBOT block generator, with one mask and one ratio per clip, shared by
  the clip's frames. K then differs between clips, and the losses handle it with padding (see ``ino.training.losses``).

Both take an explicit ``numpy.random.Generator``, so a step's mask depends only on the seed and the step,
never on hidden global RNG state.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ino.configs.schema import MaskConfig

#: log-uniform aspect-ratio range of a BEiT/iBOT mask block
BLOCK_ASPECT = (0.3, 1 / 0.3)
#: attempts per round to place one block before a round counts as "added nothing"
BLOCK_ATTEMPTS = 10


def _check_ratio(prob: float, ratio: tuple[float, float]) -> None:
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"mask probability must lie in [0, 1], got {prob}")
    low, high = ratio
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"mask ratio range must satisfy 0 <= low <= high <= 1, got {ratio}")


def random_shared_mask(
    rng: np.random.Generator,
    num_patches: int = 28 * 28,
    prob: float = 0.5,
    ratio: tuple[float, float] = (0.1, 0.5),
) -> torch.Tensor:
    """INO's per-step mask: bool (num_patches,), all False with probability 1 - ``prob``.

    Otherwise r ~ U(ratio) and exactly floor(r * num_patches) positions, drawn uniformly without replacement,
    are True (for 784 patches: 78 to 392). Apply it to every global crop of the step.
    """
    _check_ratio(prob, ratio)
    if num_patches < 1:
        raise ValueError(f"the mask needs at least one patch, got num_patches={num_patches}")
    mask = torch.zeros(num_patches, dtype=torch.bool)
    if rng.random() >= prob:
        return mask
    count = int(rng.uniform(*ratio) * num_patches)
    mask[torch.from_numpy(rng.permutation(num_patches)[:count])] = True
    return mask


def _block_mask(rng: np.random.Generator, height: int, width: int, target: float) -> np.ndarray:
    """One BEiT/iBOT block mask on a height x width grid with at most ``target`` (float) cells, iBOT's loop.

    Rounds paint one box each: up to ``BLOCK_ATTEMPTS`` tries of a box with area ~ U((min side // 3)^2, still
    missing) and log-uniform aspect ratio, accepted when it fits strictly inside the grid and adds between 1
    and "still missing" new cells. Stops when the count reaches ``target`` or a round adds nothing; boxes never
    overshoot, so the count ends at or a little below ``target``.
    """
    mask = np.zeros((height, width), dtype=bool)
    count = 0
    min_area = (min(height, width) // 3) ** 2
    log_aspect = (math.log(BLOCK_ASPECT[0]), math.log(BLOCK_ASPECT[1]))
    while count < target:
        missing = target - count
        added = 0
        for _ in range(BLOCK_ATTEMPTS):
            area = min_area + (missing - min_area) * rng.random()  # random.uniform: fine when missing < min_area
            aspect = math.exp(rng.uniform(*log_aspect))
            box_h = round(math.sqrt(area * aspect))
            box_w = round(math.sqrt(area / aspect))
            if box_h < height and box_w < width:
                top = int(rng.integers(0, height - box_h + 1))
                left = int(rng.integers(0, width - box_w + 1))
                box = mask[top : top + box_h, left : left + box_w]
                new = box.size - int(box.sum())
                if 0 < new <= missing:
                    box[...] = True
                    added = new
                    break
        if added == 0:
            break
        count += added
    return mask


def block_masks(
    rng: np.random.Generator,
    clips: int,
    grid: tuple[int, int] = (28, 28),
    prob: float = 0.5,
    ratio: tuple[float, float] = (0.1, 0.5),
) -> torch.Tensor:
    """Paper-variant masks: bool (clips, h, w), one BEiT/iBOT block mask per clip, shared by its frames.

    Each clip is masked with probability ``prob`` (iBOT's ``--pred_ratio 0 0.3 --pred_ratio_var 0 0.2`` is
    prob 0.5 with r ~ U(0.1, 0.5)) and then covers about r * h * w cells (never more); unmasked clips are all
    False. Flatten with ``.flatten(1)`` for the (clips, N) layout the losses and ``per_frame_mask`` take.
    """
    _check_ratio(prob, ratio)
    height, width = grid
    if clips < 0 or height < 1 or width < 1:
        raise ValueError(f"block masks need clips >= 0 and a non-empty grid, got clips={clips}, grid={grid}")
    masks = np.zeros((clips, height, width), dtype=bool)
    for clip in range(clips):
        if rng.random() < prob:
            masks[clip] = _block_mask(rng, height, width, rng.uniform(*ratio) * height * width)
    return torch.from_numpy(masks)


def per_frame_mask(mask: torch.Tensor, frames: int, clips: int) -> torch.Tensor:
    """Any supported mask layout as bool (frames, clips, N): (N,) shared, (clips, N) per clip, (frames, clips, N).

    ``.flatten(0, 1)`` gives the (frames * clips, N) mask for the student's global crops, whose batch is
    ordered (frame, clip) like every other flattened tensor in training.
    """
    if mask.dtype != torch.bool:
        raise ValueError(f"masks must be bool tensors, got {mask.dtype}")
    if mask.dim() == 1:
        return mask.expand(frames, clips, -1)
    if mask.dim() == 2 and mask.shape[0] == clips:
        return mask.unsqueeze(0).expand(frames, -1, -1)
    if mask.dim() == 3 and mask.shape[:2] == (frames, clips):
        return mask
    raise ValueError(
        f"mask of shape {tuple(mask.shape)} fits neither (N,), ({clips}, N) nor ({frames}, {clips}, N) "
        f"for {frames} frames of {clips} clips"
    )


def step_mask(config: MaskConfig, seed: int, step: int, rank: int, clips: int, grid: int) -> torch.Tensor | None:
    """A training step's mask: (N,) shared by every rank (faithful; None when the step is unmasked) or (clips, N)
    per clip (paper).

    The faithful draw depends on (seed, step) only, so every rank draws the same mask and skips or runs the patch
    losses together. Block masks depend on the rank too (its clips are its own) and are returned even when none of
    this rank's clips is masked: the patch losses' centre update is a collective that every rank must join.
    """
    if config.mode == "block":
        rng = np.random.default_rng([seed, step, rank])
        return block_masks(rng, clips, (grid, grid), config.prob, config.ratio).flatten(1)
    mask = random_shared_mask(np.random.default_rng([seed, step]), grid * grid, config.prob, config.ratio)
    return mask if mask.any() else None
