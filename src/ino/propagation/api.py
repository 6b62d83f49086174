"""Segment objects through video from a first-frame mask: frame by frame (:class:`VideoPropagator`) or a whole video.

A live or endless source, one frame at a time (memory holds only the context: the first frame of each reference
chain and the last ``n_last_frames`` frames, docs/method.md §7.8)::

    import ino
    propagator = ino.VideoPropagator("backbone.safetensors", "ino-davis")
    for t, frame in enumerate(camera):                    # RGB uint8 (H, W, 3)
        ids = propagator.step(frame, first_ids if t == 0 else None)   # uint8 (H, W): 0 background, 1..n objects

A whole video (file, folder of frames or frame arrays), features computed ``batch_size`` frames at a time::

    masks = ino.propagate_video("clip.mp4", "first.png", backbone="backbone.safetensors", radius=20)

Masks are PNG paths or integer id maps (void 255 is background). A mask given on a later frame adds the objects
first seen in it, each starting its own reference chain (YouTube-VOS, docs/method.md §7.5); ids seen before are
ignored there.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from ino.data.davis import object_ids, read_object_ids
from ino.errors import InoError
from ino.models.timm_backbone import Backbone, TimmBackbone
from ino.models.vit import InoViT
from ino.models.weights import load_backbone
from ino.propagation.engine import LabelPropagator, labels_to_mask
from ino.propagation.features import FeatureExtractor, check_frame_size
from ino.propagation.presets import PropagationConfig, for_patch_size, resolve_config, target_size

MaskLike = np.ndarray | str | Path
Frames = str | Path | Iterable[np.ndarray]


def load_propagation_backbone(
    source: Backbone | str | Path,
    config: PropagationConfig,
    *,
    arch: str | None = None,
    patch_size: int | None = None,
    seed: int = 0,
) -> Backbone:
    """The backbone to propagate with: a model as is, ``"random"`` (seeded ViT-S/8), or a weights file.

    Training checkpoints give the entry named by ``config.checkpoint_key`` (INO: student, DINO: teacher). ``arch``
    may be a timm ViT name (:mod:`ino.models.timm_backbone`). A backbone whose patch size differs from the
    protocol's is propagated with :func:`for_patch_size` of it.
    """
    if isinstance(source, (InoViT, TimmBackbone)):
        return source.eval()
    return load_backbone(source, arch=arch, patch_size=patch_size, which=config.checkpoint_key, seed=seed)


def load_mask(mask: MaskLike, what: str = "mask") -> np.ndarray:
    """Object ids (void 255 read as background) from a PNG path or an integer array."""
    return read_object_ids(mask) if isinstance(mask, (str, Path)) else object_ids(mask, what)


def check_mask(ids: np.ndarray, frame_hw: tuple[int, int], what: str, need_object: bool = True) -> None:
    """Fail with one clear message when a mask does not fit the frames or holds no object."""
    if ids.shape != tuple(frame_hw):
        raise InoError(f"{what} is {ids.shape[1]}x{ids.shape[0]} (WxH) but the frames are {frame_hw[1]}x{frame_hw[0]}")
    if need_object and not ids.any():
        raise InoError(f"{what} has no object: every pixel is background (0)")


class VideoPropagator:
    """Label propagation as a stream: a frame (and, when objects appear, their mask) in, object ids out.

    ``backbone``: an :class:`~ino.models.vit.InoViT`, a weights file (INO/DINO/timm checkpoint or our safetensors
    export), ``"random"``, or None to feed features yourself through :meth:`step_features`. ``preset`` and keyword
    ``overrides`` (``topk``, ``radius``, ``n_last_frames``, ``feature_dtype``, ...) set the protocol. Runs on CUDA
    when available unless ``device`` says otherwise; :meth:`run` computes features ``batch_size`` frames at a time.
    """

    def __init__(
        self,
        backbone: InoViT | str | Path | None = "random",
        preset: str | PropagationConfig = "ino-davis",
        *,
        device: torch.device | str | None = None,
        batch_size: int = 1,
        **overrides: object,
    ) -> None:
        self.config = resolve_config(preset, **overrides)
        self.extractor: FeatureExtractor | None = None
        if backbone is not None:
            model = load_propagation_backbone(backbone, self.config)
            self.config = for_patch_size(self.config, model.patch_size)
            self.extractor = FeatureExtractor(model, self.config, device=device, batch_size=batch_size)
        self.device = self.extractor.device if self.extractor else (None if device is None else torch.device(device))
        self.reset()

    def reset(self) -> None:
        """Forget the current video: the next frame is frame 0 of a new one and needs a mask."""
        self._engine = LabelPropagator(self.config, self.device)
        self._frame_hw: tuple[int, int] | None = None

    @property
    def frame_index(self) -> int:
        """Index of the next frame :meth:`step` expects."""
        return self._engine.frame_index

    @property
    def held_frames(self) -> list[int]:
        """The frames held in memory (bounded: each chain's first frame plus the last ``n_last_frames``)."""
        return self._engine.held_frames

    def step(self, frame: np.ndarray, new_objects: MaskLike | None = None) -> np.ndarray:
        """Object ids (uint8, the frame's size) of the next frame.

        ``new_objects`` is required on frame 0 (its ids are returned unchanged, void as background); on a later
        frame its ids not seen before start new objects there, injected into this frame's prediction.
        """
        if self.extractor is None:
            raise InoError("this VideoPropagator was built without a backbone: pass features to step_features()")
        check_frame_size(frame, self._frame_hw, self.frame_index)
        self._frame_hw = self._frame_hw or (frame.shape[0], frame.shape[1])
        return self.step_features(self.extractor.batch([frame])[0], new_objects)

    def step_features(self, features: torch.Tensor, new_objects: MaskLike | None = None) -> np.ndarray:
        """:meth:`step` from the frame's features (C, h, w) instead of its pixels (e.g. your own encoder's)."""
        t = self.frame_index
        ids = None
        if new_objects is not None:
            ids = load_mask(new_objects, f"mask of frame {t}")
            self._frame_hw = self._frame_hw or (ids.shape[0], ids.shape[1])
            check_mask(ids, self._frame_hw, f"mask of frame {t}", need_object=t == 0)
        soft = self._engine.step(features, ids)
        if t == 0:
            return ids  # type: ignore[return-value]  # the engine refused frame 0 without a mask
        assert self._frame_hw is not None
        return labels_to_mask(soft, target_size(*self._frame_hw, self.config), self._frame_hw, self.config)

    def run(self, frames: Iterable[np.ndarray], masks: Mapping[int, MaskLike]) -> Iterator[np.ndarray]:
        """Object ids for every frame of a new video, given masks at frame 0 (and where new objects appear).

        :meth:`step` in a loop, with features computed ``batch_size`` frames at a time and frames consumed lazily,
        so a video is never held whole. Every mask is checked against the first frame before any work.
        """
        self.reset()
        if self.extractor is None:
            raise InoError("this VideoPropagator was built without a backbone: pass features to step_features()")
        stream = iter(frames)
        first = next(stream, None)
        if first is None:
            raise InoError("no frames to propagate through")
        if 0 not in masks:
            raise InoError("propagation needs the mask of frame 0")
        given = {t: load_mask(mask, f"mask of frame {t}") for t, mask in masks.items()}
        for t, ids in given.items():
            check_mask(ids, first.shape[:2], f"mask of frame {t}", need_object=t == 0)
        self._frame_hw = (first.shape[0], first.shape[1])
        for t, features in enumerate(self.extractor(itertools.chain([first], stream))):
            yield self.step_features(features, given.get(t))


def _frame_source(video: Frames) -> Iterable[np.ndarray]:
    if isinstance(video, (str, Path)):
        from ino.data.videos import iter_frames

        return iter_frames(video)
    return video


def propagate_video(
    video: Frames,
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
    """Object ids (uint8, frame size) for every frame, propagated from ``first_mask`` on frame 0.

    ``video`` is a video file, a folder of images or RGB uint8 frames; ``masks`` adds masks of later frames whose
    new ids start there. The other arguments are :class:`VideoPropagator`'s.
    """
    propagator = VideoPropagator(backbone, preset, device=device, batch_size=batch_size, **overrides)
    frames = itertools.islice(_frame_source(video), max_frames)
    return list(propagator.run(frames, {**(masks or {}), 0: first_mask}))
