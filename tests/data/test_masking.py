"""Mask generators (docs/method.md §4): INO's random shared mask and the iBOT/BEiT block masks of the paper variant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ino.data.masking import _block_mask, block_masks, per_frame_mask, random_shared_mask

N = 28 * 28


def test_random_shared_mask_statistics():
    rng = np.random.default_rng(0)
    masks = torch.stack([random_shared_mask(rng, N) for _ in range(2000)])
    assert masks.shape == (2000, N) and masks.dtype == torch.bool
    counts = masks.sum(1)
    masked = counts > 0
    assert abs(masked.float().mean().item() - 0.5) < 0.04  # binomial sd ~0.011
    k = counts[masked]
    assert k.min() >= 78 and k.max() <= 392  # floor(0.1 * 784) .. floor(0.5 * 784)
    assert abs(k.float().mean().item() - 235) < 10  # K = floor(r N) with r ~ U(0.1, 0.5): mean ~234.7
    # positions are uniform: every cell is masked about equally often
    per_cell = masks[masked].float().mean(0)
    assert per_cell.min() > 0.2 and per_cell.max() < 0.4


def test_random_shared_mask_is_reproducible_and_honours_prob():
    a = [random_shared_mask(np.random.default_rng(7), N) for _ in range(3)]
    assert all(torch.equal(a[0], m) for m in a)
    rng = np.random.default_rng(1)
    assert not any(random_shared_mask(rng, N, prob=0.0).any() for _ in range(50))
    assert all(random_shared_mask(rng, N, prob=1.0).any() for _ in range(50))
    with pytest.raises(ValueError):
        random_shared_mask(rng, N, ratio=(0.6, 0.5))


def test_single_block_mask_reaches_but_never_exceeds_its_target():
    rng = np.random.default_rng(3)
    shortfall = []
    for _ in range(500):
        target = rng.uniform(0.1, 0.5) * N
        count = int(_block_mask(rng, 28, 28, target).sum())
        assert count <= target  # a box is only accepted if it adds no more than what is still missing
        shortfall.append((target - count) / target)
    # rounds stop when nothing fits the remainder, typically a few cells short of the target
    assert np.mean(shortfall) < 0.05 and np.median(shortfall) < 0.02


def test_block_masks_are_blocks_per_clip_with_per_clip_probability():
    rng = np.random.default_rng(4)
    masks = block_masks(rng, 400, (28, 28))
    assert masks.shape == (400, 28, 28) and masks.dtype == torch.bool
    counts = masks.flatten(1).sum(1)
    masked = counts > 0
    assert abs(masked.float().mean().item() - 0.5) < 0.08
    assert counts[masked].max() <= 0.5 * N and counts[masked].float().mean() > 0.2 * N
    # blocks, not scatter: most masked cells have a masked 4-neighbour
    m = masks[masked]
    padded = torch.nn.functional.pad(m, (1, 1, 1, 1))
    neighbour = padded[:, :-2, 1:-1] | padded[:, 2:, 1:-1] | padded[:, 1:-1, :-2] | padded[:, 1:-1, 2:]
    assert (neighbour & m).sum() > 0.95 * m.sum()
    assert not block_masks(rng, 20, (28, 28), prob=0.0).any()
    assert block_masks(rng, 20, (14, 20), prob=1.0).flatten(1).any(1).all()


def test_per_frame_mask_layouts():
    frames, clips = 3, 2
    shared = torch.rand(N) < 0.3
    out = per_frame_mask(shared, frames, clips)
    assert out.shape == (frames, clips, N) and all(torch.equal(out[t, b], shared) for t in range(3) for b in range(2))
    per_clip = block_masks(np.random.default_rng(5), clips, (28, 28), prob=1.0).flatten(1)
    out = per_frame_mask(per_clip, frames, clips)
    assert all(torch.equal(out[t], per_clip) for t in range(frames))  # shared across the frames of a clip
    # the student's global-crop batch is ordered (frame, clip)
    assert torch.equal(out.flatten(0, 1)[clips + 1], per_clip[1])
    general = torch.rand(frames, clips, N) < 0.3
    assert per_frame_mask(general, frames, clips) is general
    with pytest.raises(ValueError):
        per_frame_mask(torch.rand(5, N) < 0.5, frames, clips)
    with pytest.raises(ValueError):
        per_frame_mask(torch.zeros(N, dtype=torch.uint8), frames, clips)
