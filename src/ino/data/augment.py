"""INO's multi-crop augmentation (docs/method.md §2): per frame one global and M local crops, each drawn anew.

The authors' ``DataAugmentationDINO`` works on PIL images; here the same recipe runs on uint8 tensors with
``torchvision.transforms.v2``, cropping first so that the colour operations touch only the small crop (about
135 ms per 4-frame clip per core when the stack was chosen). Choices that keep it equal to the PIL reference:

- RandomResizedCrop uses bicubic interpolation with ``antialias=True``: torch's antialiased bicubic is PIL's
  (a = -0.5, support scaled when downsampling); resizes agree to within one grey level.
- PIL's ``GaussianBlur(radius=r)`` takes ``r`` as the standard deviation (three box blurs approximating it), so
  ``sigma = r ~ U(0.1, 2.0)``. The kernel spans 3 sigma of the largest sigma (13 taps for 2.0), capped by the
  crop size; at 64 px that matches PIL to about one grey level, where a 9-tap kernel cuts sigma-2 tails.
- ColorJitter applies brightness, contrast, saturation and hue in a random order, as torchvision v1 did on PIL.

Global crops get no flip and no photometric change in the authors' code (docs/method.md §2, ``global_aug="none"``); the
paper's text also flips and jitters them (``global_aug="paper"``, with the local crops' flip and jitter settings).
Local crops get, in order: RandomResizedCrop, flip, jitter (p 0.8), grayscale (p 0.2), blur (p 0.5), normalisation.

RandomResizedCrop keeps torchvision's algorithm (10 tries, then a centre crop with the ratio clamped), as the
authors' code did. A consequence worth knowing: on a 16:9 frame no try can fit an area of 0.80 or more with a ratio
of at most 4/3, so every global crop is the same centre 4:3 crop covering 75 % of the frame.

Randomness comes from torch's global RNG only (torchvision v2 draws every parameter with ``torch.rand`` and
``torch.randint``), so ``torch.manual_seed`` fixes the output; ``ino.data.clips.ClipDataset`` seeds it per sample.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from ino.configs.schema import AugmentConfig
from ino.errors import InoError


class MultiCropAugment:
    """One clip's frames -> (global crops, local crops), float32 and normalised, every crop drawn independently.

    Input: uint8 RGB frames, either ``(L, H, W, 3)`` (what the video decoders give, numpy or torch) or a torch
    ``(L, 3, H, W)``. Output: ``globals`` of shape (L, 3, G, G) and ``locals`` of shape (L, M, 3, S, S). No
    random parameter is shared across frames or crops, so the global crops of neighbouring frames are not aligned.
    """

    def __init__(self, config: AugmentConfig | None = None) -> None:
        self.config = config = config or AugmentConfig()
        bicubic = v2.InterpolationMode.BICUBIC
        self.global_crop = v2.RandomResizedCrop(
            config.global_size, config.global_scale, config.ratio, interpolation=bicubic, antialias=True
        )
        self.local_crop = v2.RandomResizedCrop(
            config.local_size, config.local_scale, config.ratio, interpolation=bicubic, antialias=True
        )
        flip_jitter = [
            v2.RandomHorizontalFlip(config.flip_p),
            v2.RandomApply([v2.ColorJitter(*config.jitter)], p=config.jitter_p),
        ]
        radius = min(math.ceil(3 * config.blur_sigma[1]), config.local_size - 1)
        self.local_colour = v2.Compose(
            [
                *flip_jitter,
                v2.RandomGrayscale(config.grayscale_p),
                v2.RandomApply([v2.GaussianBlur(2 * radius + 1, config.blur_sigma)], p=config.blur_p),
            ]
        )
        self.global_colour = v2.Compose(flip_jitter) if config.global_aug == "paper" else None

    def __call__(self, frames: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        clip = _as_chw(frames)
        globals_, locals_ = [], []
        for frame in clip:
            crop = self.global_crop(frame)
            globals_.append(crop if self.global_colour is None else self.global_colour(crop))
            locals_.extend(self.local_colour(self.local_crop(frame)) for _ in range(self.config.n_local))
        size = self.config.local_size
        return self._normalise(torch.stack(globals_)), self._normalise(torch.stack(locals_)).view(
            len(clip), self.config.n_local, 3, size, size
        )

    def _normalise(self, crops: torch.Tensor) -> torch.Tensor:
        """uint8 crops -> float32 in [0, 1] -> (x - mean) / std, as ToTensor + Normalize did."""
        return TF.normalize(TF.to_dtype(crops, torch.float32, scale=True), self.config.mean, self.config.std)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


def _as_chw(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A (L, 3, H, W) uint8 view of the clip (channels-last memory for HWC input, which the uint8 resize prefers)."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise InoError(f"numpy frames must be (L, H, W, 3) uint8, got shape {frames.shape}")
        # torch warns on read-only arrays (memory-mapped or decoded buffers); nothing here writes to the input
        frames = torch.from_numpy(frames if frames.flags.writeable else frames.copy())
        channels_last = True
    elif isinstance(frames, torch.Tensor):
        if frames.ndim != 4 or 3 not in (frames.shape[1], frames.shape[-1]):
            raise InoError(f"frames must be (L, H, W, 3) or (L, 3, H, W), got shape {tuple(frames.shape)}")
        if frames.shape[1] == 3 and frames.shape[-1] == 3:
            raise InoError(f"frames of shape {tuple(frames.shape)} read both as (L, H, W, 3) and (L, 3, H, W)")
        channels_last = frames.shape[-1] == 3
    else:
        raise InoError(f"frames must be a numpy array or a torch tensor, got {type(frames).__name__}")
    if frames.dtype != torch.uint8:
        raise InoError(f"frames must be uint8 RGB, got {frames.dtype}")
    if frames.shape[0] < 1:
        raise InoError("a clip needs at least one frame")
    return frames.permute(0, 3, 1, 2) if channels_last else frames
