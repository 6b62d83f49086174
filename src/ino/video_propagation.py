"""Segment objects through a video from a first-frame mask: the Python API behind ``ino propagate``.

For video-editing users::

    import ino
    masks = ino.propagate_video("clip.mp4", "first_mask.png", backbone="backbone.safetensors")
    masks = ino.propagate_video(frames, first_ids, backbone=model, preset="ino-davis", radius=20)

``frames`` may be a video file, a folder of images, or a sequence of RGB uint8 arrays; masks may be PNG paths or
id arrays (0 = background, 1..n = objects, any number of them). Later masks (``masks={t: ids}``) add objects
that appear at frame t, as YouTube-VOS does. The result is one uint8 id map per frame at the frames' size.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ino.data.davis import VOID_ID, read_mask
from ino.errors import InoError
from ino.features import FeatureExtractor
from ino.models.vit import InoViT
from ino.models.weights import load_backbone
from ino.propagate import propagate
from ino.propagation_presets import PropagationConfig, get_preset, target_size

MaskLike = np.ndarray | str | Path


def resolve_config(preset: str | PropagationConfig = "ino-davis", **overrides: object) -> PropagationConfig:
    """A preset by name (or a config) with any fields replaced, e.g. ``resolve_config("ino-davis", topk=10)``."""
    config = get_preset(preset) if isinstance(preset, str) else preset
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(PropagationConfig)})
    if unknown:
        raise InoError(f"unknown propagation setting(s): {', '.join(unknown)}")
    return dataclasses.replace(config, **overrides) if overrides else config


def load_propagation_backbone(
    source: InoViT | str | Path,
    config: PropagationConfig,
    *,
    arch: str | None = None,
    patch_size: int | None = None,
    seed: int = 0,
) -> InoViT:
    """The backbone to propagate with: a model as is, ``"random"`` (seeded ViT-S/8), or a weights file.

    Training checkpoints give the entry named by ``config.checkpoint_key`` (INO: student, DINO: teacher).
    """
    if isinstance(source, InoViT):
        return source.eval()
    model = load_backbone(source, arch=arch, patch_size=patch_size, which=config.checkpoint_key, seed=seed)
    if model.patch_size != config.patch_size:
        raise InoError(
            f"{source}: the backbone has patch size {model.patch_size}, the propagation settings "
            f"{config.patch_size} (set patch_size={model.patch_size})"
        )
    return model


def load_mask(mask: MaskLike, what: str = "mask") -> np.ndarray:
    """An id map (void 255 read as background) from a PNG path or an integer array."""
    ids = read_mask(mask) if isinstance(mask, (str, Path)) else np.asarray(mask)
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise InoError(f"{what}: expected a 2-D integer id map, got shape {ids.shape} dtype {ids.dtype}")
    return np.where(ids == VOID_ID, 0, ids).astype(np.uint8)


def check_mask(ids: np.ndarray, frame_hw: tuple[int, int], what: str, need_object: bool = True) -> None:
    """Fail with one clear message when a mask does not fit the frames or holds no object."""
    if ids.shape != tuple(frame_hw):
        raise InoError(f"{what} is {ids.shape[1]}x{ids.shape[0]} (WxH) but the frames are {frame_hw[1]}x{frame_hw[0]}")
    if need_object and not ids.any():
        raise InoError(f"{what} has no object: every pixel is background (0)")


def segment_frames(
    frames: Iterable[np.ndarray], masks: Mapping[int, np.ndarray], extractor: FeatureExtractor
) -> Iterator[np.ndarray]:
    """Id maps for every frame of a stream of RGB uint8 frames, given id maps at frame 0 (and later frames).

    Frames are consumed lazily through the extractor, so a video is never held whole.
    """
    stream = iter(frames)
    first = next(stream, None)
    if first is None:
        raise InoError("no frames to propagate through")
    original_hw = (first.shape[0], first.shape[1])
    if 0 not in masks:
        raise InoError("propagation needs the mask of frame 0")
    for t, ids in masks.items():
        check_mask(ids, original_hw, f"mask of frame {t}", need_object=t == 0)
    target_hw = target_size(*original_hw, extractor.config)
    features = extractor(itertools.chain([first], stream))
    yield from propagate(features, masks, extractor.config, target_hw, original_hw, device=extractor.device)


def _frame_source(video: str | Path | Sequence[np.ndarray] | Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    if isinstance(video, (str, Path)):
        from ino.data.videos import iter_frames

        return iter_frames(video)
    return video


def propagate_video(
    video: str | Path | Iterable[np.ndarray],
    first_mask: MaskLike,
    *,
    backbone: InoViT | str | Path = "random",
    preset: str | PropagationConfig = "ino-davis",
    masks: Mapping[int, MaskLike] | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 1,
    max_frames: int | None = None,
    **overrides: object,
) -> list[np.ndarray]:
    """Id masks (uint8, frame size) for every frame, propagated from ``first_mask`` on frame 0.

    ``backbone``: an :class:`~ino.models.vit.InoViT`, a weights file (INO/DINO/timm checkpoint or our
    safetensors export) or ``"random"``. ``preset`` and keyword ``overrides`` (``topk``, ``radius``,
    ``n_last_frames``, ``feature_dtype``, ...) set the protocol. ``masks`` adds id maps for later frames whose
    new ids start their own reference chains. Runs on CUDA when available unless ``device`` says otherwise.
    """
    config = resolve_config(preset, **overrides)
    model = load_propagation_backbone(backbone, config)
    extractor = FeatureExtractor(model, config, device=device, batch_size=batch_size)
    given = {0: load_mask(first_mask, "first-frame mask")}
    for t, mask in (masks or {}).items():
        given[t] = load_mask(mask, f"mask of frame {t}")
    frames = itertools.islice(_frame_source(video), max_frames)
    return list(segment_frames(frames, given, extractor))
