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

Soft labels (keypoint heat maps, part probabilities) on the feature grid, in and out, never argmaxed::

    target_hw, grid_hw = propagator.geometry(H, W)        # resized frame size, feature grid (h, w)
    for t, soft in enumerate(propagator.run_soft(frames, first_labels)):   # first_labels: float (n, h, w)
        ...                                               # soft: (n, h, w); frame 0 gives first_labels back
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from ino.data.davis import VOID_ID, object_ids, read_object_ids
from ino.errors import InoError
from ino.models.timm_backbone import Backbone, TimmBackbone
from ino.models.vit import InoViT
from ino.models.weights import load_backbone
from ino.propagation.engine import LabelPropagator, labels_to_mask
from ino.propagation.features import FeatureExtractor, check_frame_size
from ino.propagation.presets import PropagationConfig, for_patch_size, grid_size, resolve_config, target_size

log = logging.getLogger(__name__)

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


def check_mask(
    ids: np.ndarray, frame_hw: tuple[int, int], what: str, need_object: bool = True, given: object = None
) -> None:
    """Fail with one clear message when a mask does not fit the frames or holds no object.

    ``given``, the mask as passed, lets the message say so when its pixels were void (255): a 0/255 binary mask
    passed as an array reads as all background.
    """
    if ids.shape != tuple(frame_hw):
        raise InoError(f"{what} is {ids.shape[1]}x{ids.shape[0]} (WxH) but the frames are {frame_hw[1]}x{frame_hw[0]}")
    if need_object and not ids.any():
        void = given is not None and not isinstance(given, (str, Path)) and bool((np.asarray(given) == VOID_ID).any())
        hint = (
            f" or void ({VOID_ID}, read as background as in DAVIS): objects are ids 1..{VOID_ID - 1}, e.g. "
            "(mask > 0).astype(np.uint8) for a 0/255 binary mask"
            if void
            else ""
        )
        raise InoError(f"{what} has no object: every pixel is background (0){hint}")


def _close(frames: Iterator[np.ndarray]) -> None:
    """Close a frame generator: a decoding thread behind it (:func:`~ino.propagation.features.prefetch`) ends."""
    close = getattr(frames, "close", None)
    if callable(close):
        close()


class VideoPropagator:
    """Label propagation as a stream: a frame (and, when objects appear, their mask) in, object ids out.

    ``backbone``: an :class:`~ino.models.vit.InoViT`, a weights file (INO/DINO/timm checkpoint or our safetensors
    export), ``"random"``, or None to feed features yourself through :meth:`step_features`. ``preset`` and keyword
    ``overrides`` (``topk``, ``radius``, ``n_last_frames``, ``feature_dtype``, ...) set the protocol. Runs on CUDA
    when available unless ``device`` says otherwise; :meth:`run` computes features ``batch_size`` frames at a time.
    ``n_classes`` fixes the number of soft-label channels of a mask-started video (default: the largest id seen
    plus one), e.g. for a class set whose classes need not all be in frame 0.

    Soft labels (keypoint heat maps, part probabilities) go through :meth:`step_soft`, :meth:`step_features_soft`
    and :meth:`run_soft`: frame 0's labels on the feature grid in, every frame's soft grid labels out, never
    argmaxed; :meth:`geometry` gives the grid of a frame size.
    """

    def __init__(
        self,
        backbone: InoViT | str | Path | None = "random",
        preset: str | PropagationConfig = "ino-davis",
        *,
        device: torch.device | str | None = None,
        batch_size: int = 1,
        n_classes: int | None = None,
        **overrides: object,
    ) -> None:
        self.config = resolve_config(preset, **overrides)
        self.extractor: FeatureExtractor | None = None
        if backbone is not None:
            model = load_propagation_backbone(backbone, self.config)
            self.config = for_patch_size(self.config, model.patch_size)
            self.extractor = FeatureExtractor(model, self.config, device=device, batch_size=batch_size)
        self.device = self.extractor.device if self.extractor else (None if device is None else torch.device(device))
        self.n_classes = n_classes
        self.reset()

    def reset(self) -> None:
        """Forget the current video: the next frame is frame 0 of a new one and needs a mask."""
        self._engine = LabelPropagator(self.config, self.device, n_classes=self.n_classes)
        self._frame_hw: tuple[int, int] | None = None

    @property
    def frame_index(self) -> int:
        """Index of the next frame :meth:`step` expects."""
        return self._engine.frame_index

    @property
    def held_frames(self) -> list[int]:
        """The frames held in memory (bounded: each chain's first frame plus the last ``n_last_frames``)."""
        return self._engine.held_frames

    def geometry(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """``(target_hw, grid_hw)`` for frames of ``height`` x ``width``: the size the backbone sees and its grid.

        Soft labels live on the grid (one cell per patch of the resized frame); scale a coordinate of the frame
        by target / frame size, then divide by ``config.patch_size``, to find its cell.
        """
        target = target_size(height, width, self.config)
        return target, grid_size(target, self.config)

    def _features_of(self, frame: np.ndarray) -> torch.Tensor:
        """One frame's features, checking it has the video's size (and recording that size on frame 0)."""
        if self.extractor is None:
            raise InoError("this VideoPropagator was built without a backbone: pass features to step_features()")
        check_frame_size(frame, self._frame_hw, self.frame_index)
        self._frame_hw = self._frame_hw or (frame.shape[0], frame.shape[1])
        return self.extractor.batch([frame])[0]

    def step(self, frame: np.ndarray, new_objects: MaskLike | None = None) -> np.ndarray:
        """Object ids (uint8, the frame's size) of the next frame.

        ``new_objects`` is required on frame 0 (its ids are returned unchanged, void as background); on a later
        frame its ids not seen before start new objects there, injected into this frame's prediction.
        """
        return self.step_features(self._features_of(frame), new_objects)

    def step_features(self, features: torch.Tensor, new_objects: MaskLike | None = None) -> np.ndarray:
        """:meth:`step` from the frame's features (C, h, w) instead of its pixels (e.g. your own encoder's)."""
        t = self.frame_index
        ids = None
        if new_objects is not None:
            ids = load_mask(new_objects, f"mask of frame {t}")
            self._frame_hw = self._frame_hw or (ids.shape[0], ids.shape[1])
            check_mask(ids, self._frame_hw, f"mask of frame {t}", need_object=t == 0, given=new_objects)
        if t and self._frame_hw is None:
            raise InoError("this video started from soft labels without a frame: its mask size is unknown")
        soft = self._engine.step(features, ids)
        if t == 0:
            return ids  # type: ignore[return-value]  # the engine refused frame 0 without a mask
        assert self._frame_hw is not None
        return labels_to_mask(soft, target_size(*self._frame_hw, self.config), self._frame_hw, self.config)

    def step_soft(self, frame: np.ndarray, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Soft labels (n_classes, h, w) on the feature grid of the next frame, never argmaxed.

        ``labels`` (float (n_classes, h, w), ``h, w`` the grid of :meth:`geometry`) are required on frame 0,
        which returns them (in the engine's label dtype, on its device). After a mask-started frame 0, this
        gives the soft labels behind the masks :meth:`step` would return.
        """
        return self.step_features_soft(self._features_of(frame), labels)

    def step_features_soft(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`step_soft` from the frame's features (C, h, w): the soft labels then live on their grid."""
        return self._engine.step(features, labels=labels)

    def _first(self, stream: Iterator[np.ndarray]) -> np.ndarray:
        """The first frame of a new video, which must exist; a backbone is needed to turn frames into features."""
        self.reset()
        if self.extractor is None:
            raise InoError("this VideoPropagator was built without a backbone: pass features to step_features()")
        first = next(stream, None)
        if first is None:
            raise InoError("no frames to propagate through")
        return first

    def run(self, frames: Iterable[np.ndarray], masks: Mapping[int, MaskLike]) -> Iterator[np.ndarray]:
        """Object ids for every frame of a new video, given masks at frame 0 (and where new objects appear).

        :meth:`step` in a loop, with features computed ``batch_size`` frames at a time and frames consumed lazily,
        so a video is never held whole. Every mask is checked against the first frame before any work; a mask of
        a frame past the video's end is ignored with a warning. ``frames`` is closed when the run ends, fails or
        is closed, so that no decoding thread behind it outlives the run.
        """
        stream = iter(frames)
        try:
            first = self._first(stream)
            if 0 not in masks:
                raise InoError("propagation needs the mask of frame 0")
            given = {t: load_mask(mask, f"mask of frame {t}") for t, mask in masks.items()}
            for t, ids in given.items():
                check_mask(ids, first.shape[:2], f"mask of frame {t}", need_object=t == 0, given=masks[t])
            self._frame_hw = (first.shape[0], first.shape[1])
            n_frames = 0
            for t, features in enumerate(self.extractor(itertools.chain([first], stream))):  # type: ignore[misc]
                n_frames = t + 1
                yield self.step_features(features, given.get(t))
            if unused := sorted(t for t in given if not 0 <= t < n_frames):
                log.warning(
                    "masks of frames %s ignored: the video has %d frames (0..%d)", unused, n_frames, n_frames - 1
                )
        finally:
            _close(stream)

    def run_soft(self, frames: Iterable[np.ndarray], first_labels: torch.Tensor) -> Iterator[torch.Tensor]:
        """Soft grid labels (n_classes, h, w) of every frame of a new video, from frame 0's ``first_labels``.

        :meth:`step_soft` in a loop, as :meth:`run` is :meth:`step`'s (lazy, batched, ``frames`` closed at the
        end); frame 0 yields ``first_labels``, whose grid is checked against the first frame before any work.
        """
        stream = iter(frames)
        try:
            first = self._first(stream)
            _, grid = self.geometry(first.shape[0], first.shape[1])
            if first_labels.ndim != 3 or tuple(first_labels.shape[1:]) != grid:
                raise InoError(
                    f"first labels of shape {tuple(first_labels.shape)} do not fit frames of {first.shape[1]}x"
                    f"{first.shape[0]}: expected (n_classes, {grid[0]}, {grid[1]}), the grid of geometry()"
                )
            self._frame_hw = (first.shape[0], first.shape[1])
            for t, features in enumerate(self.extractor(itertools.chain([first], stream))):  # type: ignore[misc]
                yield self.step_features_soft(features, first_labels if t == 0 else None)
        finally:
            _close(stream)


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
